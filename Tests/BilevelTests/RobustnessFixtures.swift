import Foundation
import XCTest
@testable import Bilevel

/// Shared pieces of the robustness suite: a small quadratic problem and a way to capture the
/// `BilevelError` a call throws.
enum Robustness {
    /// `f(x, y) = ½ c ‖y − x‖²` and `F(x, y) = ½ ‖y‖² + upperExtra(y)` on y ∈ ℝ³ (declared `lowerShape`).
    static func quadratic(
        curvature: Double = 1, dynamics: InnerDynamics = .gradientDescent(step: 0.1), innerSteps: Int = 20,
        constraints: LinearConstraints? = nil, lowerShape: [Int]? = [3], upperExtra: @escaping (Tensor) -> Tensor = { _ in Tensor(0) }
    ) -> BilevelProblem {
        BilevelProblem(
            upper: { _, y in 0.5 * y.squaredNorm() + upperExtra(y) },
            lower: { x, y in (0.5 * curvature) * (y - x).squaredNorm() },
            dynamics: dynamics, innerSteps: innerSteps, constraints: constraints, lowerShape: lowerShape)
    }

    static let x = Tensor([1, 2, 3])
    static let y0 = Tensor([0, 0, 0])

    /// Every unconstrained method of the package in a configuration that runs on `quadratic`.
    static func unconstrainedMethods() -> [any HypergradientMethod] {
        [
            ReverseUnroll(), TruncatedReverseUnroll(truncation: 5), ForwardUnroll(), OneStage(), FirstOrderUnroll(),
            Implicit(solver: .conjugateGradient()), Implicit(solver: .neumannSeries(terms: 10, step: 0.5)),
            Implicit(solver: .fixedPoint(iterations: 10, step: 0.5)), Implicit(solver: .exact),
            Implicit(solver: .hessianFree(lambda: 1)), BDA(aggregation: 0.5, upperStep: 0.1),
            F2SA(multiplier: 2), BOME(jointStep: 0.1), BVFIM(scale: 0.1, barrierIterations: 50),
            PessimisticBDA(aggregation: 0.5, upperStep: 0.1),
        ]
    }

    /// The methods that honour `problem.constraints`.
    static func constrainedMethods() -> [any HypergradientMethod] {
        [
            KKTImplicit(solver: .conjugateGradient()),
            SmoothedImplicit(kkt: KKTImplicit(solver: .conjugateGradient()), sigma: 0.01, samples: 2), PBGD(penalty: 2),
        ]
    }
}

/// The `BilevelError` that `body` throws, or a test failure (and `nil`) when it throws nothing or
/// another error.
func bilevelError(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> BilevelError? {
    do {
        _ = try body()
        XCTFail("expected a BilevelError, nothing was thrown", file: file, line: line)
    } catch let error as BilevelError {
        return error
    } catch {
        XCTFail("expected a BilevelError, got \(error)", file: file, line: line)
    }
    return nil
}

/// Asserts that `text` contains every fragment.
func assertMentions(_ text: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
    for fragment in fragments { XCTAssertTrue(text.contains(fragment), "«\(text)» lacks «\(fragment)»", file: file, line: line) }
}
