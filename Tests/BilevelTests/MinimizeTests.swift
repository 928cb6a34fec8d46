import XCTest
@testable import Bilevel

/// The outer loop: every method lowers the validation loss of data hyper-cleaning (P3, reduced size).
final class MinimizeTests: XCTestCase {
    let cleaning = Fixtures.Cleaning(n: 40, m: 30, d: 8)

    /// The validation loss at the exact inner solution, `F(w*(x))`.
    private func validationLoss(_ x: Tensor) -> Double { cleaning.upper(x, cleaning.solution(x)).scalar }

    func testEveryMethodImprovesHyperCleaningValidationLoss() throws {
        let problem = cleaning.problem(steps: 15), y0 = Tensor(zeros: [cleaning.d])
        let methods: [any HypergradientMethod] = [
            ReverseUnroll(), ForwardUnroll(), TruncatedReverseUnroll(truncation: 5), OneStage(),
            Implicit(solver: .conjugateGradient(maxIterations: 30)), Implicit(solver: .neumannSeries(terms: 30, step: 10)),
            Implicit(solver: .fixedPoint(iterations: 30, step: 10)), Implicit(solver: .exact),
        ]
        let before = validationLoss(cleaning.x0)
        for method in methods {
            let run = try minimize(problem, method: method, from: cleaning.x0, y0: y0, optimizer: .adam(step: 0.1), steps: 20, warmStart: true)
            let after = validationLoss(run.x)
            print("\(method.name): validation loss \(before) → \(after) (F along the run \(run.upperValues.first!) → \(run.upperValues.last!))")
            XCTAssertLessThan(after, before, method.name)
            XCTAssertEqual(run.upperValues.count, 20)
            XCTAssertEqual(run.diagnostics.count, 20)
        }
    }

    func testGradientDescentWithProjectionStaysFeasible() throws {
        let ridge = Fixtures.Ridge(n: 40, d: 5)
        let problem = ridge.problem(steps: 30)
        let project: (Tensor) -> Tensor = { x in Tensor(x.scalars.map { min(max($0, -3.2), -2.8) }) }
        let run = try minimize(
            problem, method: ReverseUnroll(), from: ridge.x0, y0: Tensor(zeros: [ridge.d]),
            optimizer: .gradientDescent(step: 50), steps: 15, projection: project)
        XCTAssertTrue(run.x.scalars.allSatisfy { $0 >= -3.2 && $0 <= -2.8 })
        XCTAssertLessThan(run.upperValues.last!, run.upperValues.first!)
    }

    func testInvalidArgumentsThrow() {
        let problem = cleaning.problem(steps: 5), y0 = Tensor(zeros: [cleaning.d])
        XCTAssertThrowsError(try minimize(problem, method: ReverseUnroll(), from: cleaning.x0, y0: y0, optimizer: .gradientDescent(step: 1), steps: 0)) {
            guard case BilevelError.invalidSteps = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try minimize(problem, method: ReverseUnroll(), from: cleaning.x0, y0: y0, optimizer: .adam(step: 0.1, beta1: 1), steps: 1))
        XCTAssertThrowsError(try minimize(
            problem, method: ReverseUnroll(), from: cleaning.x0, y0: y0, optimizer: .gradientDescent(step: 1), steps: 1,
            projection: { $0[0..<2] })) {
            guard case BilevelError.shapeMismatch = $0 else { return XCTFail("\($0)") }
        }
    }
}
