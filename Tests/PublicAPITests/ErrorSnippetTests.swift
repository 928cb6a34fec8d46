import AutoDiff
import Bilevel
import XCTest

/// The guide's error-policy snippet, compiled against the public API only.
final class ErrorSnippetTests: XCTestCase {
    /// The guide's snippet (Docs/guide.md, "Errors and reliability"), verbatim, then its message checked.
    func testGuideSnippetCatchesABroadcastingY0() {
        var printed = ""
        func print(_ error: BilevelError) { printed = "\(error)" }
        let problem = BilevelProblem(
            upper: { _, y in y.squaredNorm() },
            lower: { x, y in (y - x).squaredNorm() },
            lowerShape: [3])
        do {
            _ = try ReverseUnroll().hypergradient(of: problem, at: Tensor([1, 2, 3]), from: Tensor([0]))
        } catch let error as BilevelError {
            print(error)   // y0 (the declared lowerShape of the problem) has shape [1] but shape [3] is required
        } catch {
            XCTFail("\(error)")
        }
        XCTAssertEqual(printed, "y0 (the declared lowerShape of the problem) has shape [1] but shape [3] is required")
    }
}
