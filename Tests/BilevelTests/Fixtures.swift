import Foundation
@testable import Bilevel
import Workloads

/// The workloads of Docs/workloads.md (module `Workloads`), under the names these tests use.
enum Fixtures {
    /// P1/P2 ridge regression.
    typealias Ridge = RidgeWorkload
    /// P3 data hyper-cleaning.
    typealias Cleaning = HyperCleaningWorkload
}

/// The largest `|a_i − b_i|` over `‖b‖_∞`.
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.shape == b.shape, "relativeError: shapes \(a.shape) and \(b.shape)")
    let scale = max(b.scalars.map(abs).max() ?? 0, 1e-300)
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()! / scale
}

/// `x` with `delta` added at flat index `i`.
func perturbed(_ x: Tensor, at i: Int, by delta: Double) -> Tensor {
    var s = x.scalars
    s[i] += delta
    return Tensor(shape: x.shape, scalars: s)
}

/// Central finite differences of a scalar function of `x`, with step `h`.
func finiteDifferenceGradient(at x: Tensor, step h: Double = 1e-5, _ f: (Tensor) throws -> Double) rethrows -> Tensor {
    Tensor(shape: x.shape, scalars: try (0..<x.count).map { i in
        (try f(perturbed(x, at: i, by: h)) - f(perturbed(x, at: i, by: -h))) / (2 * h)
    })
}

/// `F(x, y_T(x))` after T inner steps of the problem's dynamics (values only).
func unrolledObjective(_ problem: BilevelProblem, _ x: Tensor, from y0: Tensor) throws -> Double {
    let oracle = BilevelOracle(problem)
    let (s, _) = try oracle.unroll(from: problem.dynamics.initialState(y0), x, steps: problem.innerSteps, like: y0)
    return problem.upper(x, problem.dynamics.iterate(s, like: y0)).scalar
}
