import Foundation
import XCTest
@testable import AutoDiff

/// The four-lane `tanh` kernel against libm's, in units in the last place, over the whole range and at the
/// special values.
final class VectorMathTests: XCTestCase {
    private func vectorTanh(_ x: [Double]) -> [Double] { AutoDiff.tanh(Tensor(x)).scalars }

    func testTanhIsWithinThreeUlpOfLibm() {
        // Log-spaced magnitudes from 1e-300 to 30 with both signs, plus a dense linear grid near the
        // branch-free reduction's interesting points (|x| around ln 2 / 4 and 20), 7 values per lane group.
        var x = (0..<4000).map { i in pow(10, -300 + 301.5 * Double(i) / 3999) }
        x += (0..<4001).map { i in -3 + 6 * Double(i) / 4000 }
        x += (0..<401).map { i in 19.5 + Double(i) / 400 }
        x += x.map { -$0 }
        x.append(contentsOf: [0.1, 0.5, 0.75])  // a tail shorter than four lanes
        let got = vectorTanh(x)
        var worst = 0.0, worstAt = 0.0
        for (value, result) in zip(x, got) {
            let expected = Foundation.tanh(value)
            let ulps = abs(result - expected) / expected.ulp
            if ulps > worst { (worst, worstAt) = (ulps, value) }
        }
        print("vector tanh: worst \(worst) ulp at x = \(worstAt)")
        XCTAssertLessThanOrEqual(worst, 3, "worst at x = \(worstAt)")
    }

    func testTanhSpecialValues() {
        let got = vectorTanh([0, -0.0, .infinity, -.infinity, .nan, 1e-320, -1e-320, 25, -700])
        XCTAssertEqual(got[0], 0)
        XCTAssertEqual(got[1].sign, .minus)
        XCTAssertEqual(got[1], 0)
        XCTAssertEqual(got[2], 1)
        XCTAssertEqual(got[3], -1)
        XCTAssertTrue(got[4].isNaN)
        XCTAssertEqual(got[5], 1e-320)
        XCTAssertEqual(got[6], -1e-320)
        XCTAssertEqual(got[7], 1)
        XCTAssertEqual(got[8], -1)
    }
}
