import XCTest
@testable import Bilevel

/// The inner step size and momentum β are validated once, in `BilevelProblem.validate`, for every
/// method: a negative or NaN step (which would ascend f) or β ∉ [0, 1) throws `invalidArgument` naming
/// the parameter and its value.
final class RobustnessParameterTests: XCTestCase {
    func testBadInnerStepsAreRejectedByEveryMethod() {
        for step in [-0.1, Double.nan, 0, Double.infinity] {
            let problem = Robustness.quadratic(dynamics: .gradientDescent(step: step))
            for method in Robustness.unconstrainedMethods() {
                let error = bilevelError { try method.hypergradient(of: problem, at: Robustness.x, from: Robustness.y0) }
                guard case let .invalidArgument(name, reason)? = error else { XCTFail("\(method.name), step \(step): \(String(describing: error))"); continue }
                XCTAssertTrue(name.contains("step η"), "\(method.name): \(name)")
                XCTAssertTrue(reason.contains("got \(step)"), "\(method.name): \(reason)")
            }
        }
    }

    func testBadMomentumIsRejectedByEveryUnrolledAndImplicitMethod() {
        let methods: [any HypergradientMethod] = [
            ReverseUnroll(), TruncatedReverseUnroll(truncation: 5), ForwardUnroll(), FirstOrderUnroll(),
            Implicit(solver: .conjugateGradient()), Implicit(solver: .neumannSeries(terms: 10, step: 0.5)),
            Implicit(solver: .fixedPoint(iterations: 10, step: 0.5)), Implicit(solver: .exact),
        ]
        for beta in [1.0, 1.5, -0.1, Double.nan] {
            let problem = Robustness.quadratic(dynamics: .momentum(step: 0.1, beta: beta))
            for method in methods {
                let error = bilevelError { try method.hypergradient(of: problem, at: Robustness.x, from: Robustness.y0) }
                guard case let .invalidArgument(name, reason)? = error else { XCTFail("\(method.name), β \(beta): \(String(describing: error))"); continue }
                XCTAssertTrue(name.contains("momentum β"), name)
                assertMentions(reason, ["[0, 1)", "got \(beta)"])
            }
        }
        let negativeStep = Robustness.quadratic(dynamics: .momentum(step: -1, beta: 0.5))
        guard case .invalidArgument? = bilevelError({ try ReverseUnroll().hypergradient(of: negativeStep, at: Robustness.x, from: Robustness.y0) }) else {
            return XCTFail("a negative momentum step was accepted")
        }
    }

    func testValidMomentumStillRuns() throws {
        let problem = Robustness.quadratic(dynamics: .momentum(step: 0.1, beta: 0.5), innerSteps: 50)
        let result = try ReverseUnroll().hypergradient(of: problem, at: Robustness.x, from: Robustness.y0)
        XCTAssertFalse(result.hypergradient.hasNonFinite)
    }

    func testBadSignStepIsRejected() {
        let problem = Robustness.quadratic(dynamics: .signGradientDescent(step: -0.01))
        guard case .invalidArgument? = bilevelError({ try SignUnroll().hypergradient(of: problem, at: Robustness.x, from: Robustness.y0) }) else {
            return XCTFail("a negative sign step was accepted")
        }
    }
}
