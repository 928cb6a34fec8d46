import Foundation
@testable import Bilevel

/// A "method" that returns a closed-form hypergradient `∇Φ(x)` at the exact lower solution: the reference
/// an outer run of a real method is compared with (same optimizer, same steps), instead of only checking
/// that the loss went down, which a biased method also achieves.
struct ClosedFormHypergradient: HypergradientMethod {
    /// `(∇Φ(x), y*(x))`.
    let exact: (Tensor) -> (hypergradient: Tensor, solution: Tensor)

    var name: String { "closed-form" }

    func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        let (g, y) = exact(x)
        return HypergradientResult(hypergradient: g, innerSolution: y, diagnostics: Diagnostics())
    }
}

/// `‖a − b‖₂ / ‖b − start‖₂`: how far a run's end point `a` lies from the reference end point `b`, relative to
/// how far the reference moved from the common `start`.
func relativeDistance(_ a: Tensor, to b: Tensor, from start: Tensor) -> Double {
    (a - b).squaredNorm().scalar.squareRoot() / (b - start).squaredNorm().scalar.squareRoot()
}

/// The optimal value `Φ* = min_x Φ(x)` of a bilevel problem with a closed-form hypergradient, by `steps`
/// Adam steps on it from `x0`; `loss` is `Φ(x) = F(x, y*(x))`. Also returns the final hypergradient norm,
/// so a test can check that the reference run has converged.
func referenceOptimum(
    _ problem: BilevelProblem, from x0: Tensor, y0: Tensor, steps: Int,
    exact: @escaping (Tensor) -> (hypergradient: Tensor, solution: Tensor), loss: (Tensor) -> Double
) throws -> (value: Double, gradientNorm: Double) {
    let run = try minimize(problem, method: ClosedFormHypergradient(exact: exact), from: x0, y0: y0, optimizer: .adam(step: 0.05), steps: steps)
    return (loss(run.x), exact(run.x).hypergradient.squaredNorm().scalar.squareRoot())
}

/// The cosine of the angle between two tensors.
func cosine(_ a: Tensor, _ b: Tensor) -> Double {
    dot(a.reshaped(to: [a.count]), b.reshaped(to: [b.count])).scalar / (a.squaredNorm().scalar * b.squaredNorm().scalar).squareRoot()
}
