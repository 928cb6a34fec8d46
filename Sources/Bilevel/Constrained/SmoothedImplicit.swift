import Foundation

/// SIGD, the smoothed implicit gradient of a linearly constrained lower level (Zhang et al. 2024, Algorithm 4;
/// Khanduri et al. 2023 (SIGD)): the lower objective's linear term is perturbed by a random vector,
///
///     f_q(x, y) = f(x, y) + qᵀy,   q ~ N(0, σ² I),
///
/// which makes the active set of `y*_q(x)` stable (strict complementarity holds) with probability one,
/// and the KKT hypergradient of the perturbed problem is averaged over S independent draws:
///
///     ∇F(x) ≈ (1/S) Σ_s ∇F_{q_s}(x),   ∇F_{q_s} from `KKTImplicit` on f_{q_s}.
///
/// Near a kink of y*(x) the average lies between the one-sided derivatives (it is the derivative of the
/// smoothed map `x ↦ E_q F(x, y*_q(x))`); far from kinks it tends to the KKT derivative as σ → 0. The draws
/// come from `SeededGenerator(seed:)`, so the estimate is reproducible.
///
/// Cost: S constrained lower solves and S KKT hypergradients. The notes report the largest standard
/// error of the average over the coordinates.
public struct SmoothedImplicit<Solver: HessianInverseSolver>: HypergradientMethod {
    /// The KKT hypergradient applied to each perturbed problem.
    public var kkt: KKTImplicit<Solver>
    /// The perturbation scale σ > 0.
    public var sigma: Double
    /// The number S ≥ 1 of perturbations averaged.
    public var samples: Int
    /// The seed of the perturbations.
    public var seed: UInt64

    /// `"sigd-<solver>"`.
    public var name: String { "sigd-\(kkt.solver.name)" }

    /// `true`: the smoothed KKT derivative of the constrained lower level.
    public var honoursConstraints: Bool { true }

    /// SIGD with S draws of scale σ, each differentiated by `kkt`.
    public init(kkt: KKTImplicit<Solver>, sigma: Double, samples: Int, seed: UInt64 = 0) {
        self.kkt = kkt
        self.sigma = sigma
        self.samples = samples
        self.seed = seed
    }

    /// The average KKT hypergradient over S perturbed lower levels (see the type's documentation);
    /// `innerSolution` is the average of the perturbed solutions.
    ///
    /// - Throws: `BilevelError.invalidArgument` for σ ≤ 0 or S < 1, and whatever `KKTImplicit` throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try requirePositive("SmoothedImplicit.sigma", sigma)
        guard samples >= 1 else { throw BilevelError.invalidArgument(name: "SmoothedImplicit.samples", reason: "must be ≥ 1, got \(samples)") }
        _ = try kkt.prepare(problem, x, y0)
        let start = DispatchTime.now().uptimeNanoseconds
        var generator = SeededGenerator(seed: seed), diagnostics = Diagnostics()
        var sum = Tensor(zeros: x.shape), sumOfSquares = Tensor(zeros: x.shape), solutions = Tensor(zeros: y0.shape)
        for _ in 0..<samples {
            let q = sigma * generator.normal(shape: y0.shape)
            var perturbed = problem
            perturbed.lower = { x, y in problem.lower(x, y) + dot(q, y) }
            let result = try kkt.hypergradient(of: perturbed, at: x, from: y0)
            sum = sum + result.hypergradient
            sumOfSquares = sumOfSquares + result.hypergradient * result.hypergradient
            solutions = solutions + result.innerSolution
            diagnostics.counts = diagnostics.counts + result.diagnostics.counts
            diagnostics.innerSteps += result.diagnostics.innerSteps
            diagnostics.converged = diagnostics.converged && result.diagnostics.converged
        }
        let count = Double(samples), mean = sum / count
        let variance = (sumOfSquares / count - mean * mean).scalars.map { Swift.max($0, 0) }
        let standardError = (variance.max() ?? 0).squareRoot() / count.squareRoot()
        diagnostics.notes.append("sigd: \(samples) perturbations of scale \(sigma) (seed \(seed)), largest standard error of the mean \(standardError)")
        diagnostics.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return HypergradientResult(hypergradient: mean, innerSolution: solutions / count, diagnostics: diagnostics)
    }
}

/// Sendable when its solver is (every solver of the package is).
extension SmoothedImplicit: Sendable where Solver: Sendable {}
