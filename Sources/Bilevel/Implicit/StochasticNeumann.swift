/// The stochastic Neumann-series estimate of `H⁻¹ b` (Zhang et al. 2024, eq. 6; Ghadimi & Wang 2018), a
/// `HessianInverseSolver` for `Implicit(solver:)`. It is unbiased for the K-term series that
/// `NeumannSeries` computes, `v_K = α Σ_{k<K} (I − αH)^k b`, using one random truncation per draw:
///
///     k_j ~ uniform{0, …, K−1},   v̂ = (α K / J) Σ_{j=1..J} (I − α H_{j,k_j}) ⋯ (I − α H_{j,1}) b,
///
/// with `H_{j,i} = H` (full Hessian-vector products), or — with `batchSize` — the Hessian of the mini-batch
/// loss (`problem.lowerBatch`, else the mean of `lowerSamples` over the batch: one staged program per batch
/// size when the problem is staged) on a fresh mini-batch for every factor (projected onto the null space of the
/// active constraints like the full product, `LinearSystem.applyBatch`, when `KKTImplicit` uses it). Since `E[K · 1{k_j = k}] = 1` and the
/// factors are independent with mean `I − αH` (a uniform mini-batch's mean loss is unbiased for f when f is
/// the mean of the per-sample losses, as for P3), `E[v̂] = v_K`. All randomness comes from
/// `SeededGenerator(seed:)`, created afresh in every `solve`: the same seed gives the same output (vary the
/// seed across outer steps, e.g. with `minimize(_:methodAtStep:…)`).
///
/// Variance trade-off: one draw costs k_j products, on average `(K − 1)/2`, half the deterministic
/// series, but scales a single term by K, so its variance grows with K (roughly K times the spread of the
/// terms `‖(I − αH)^k b‖²`) and mini-batch Hessians add their own sampling noise; averaging J draws
/// (`samples`) divides the variance by J at J times the cost. Use it inside stochastic outer loops where an
/// unbiased, cheap, noisy `H⁻¹ ∇ᵧF` is worth more than an exact one; use `NeumannSeries` or CG otherwise.
///
/// Cost: `Σ_j k_j` HVPs (`iterations`), plus one full HVP for the reported residual. The notes list the
/// drawn truncations.
public struct StochasticNeumann: HessianInverseSolver, Sendable {
    /// The number K of series terms the estimate is unbiased for.
    public var terms: Int
    /// The step α (needs `α < 2/λ_max(H)` for the series to converge).
    public var step: Double
    /// The number J of independent draws averaged.
    public var samples: Int
    /// Mini-batch size for per-factor Hessians from `problem.lowerBatch` or `lowerSamples`, or `nil` for the
    /// full Hessian.
    public var batchSize: Int?
    /// The seed of the truncations and mini-batches.
    public var seed: UInt64

    /// `"neumann-stochastic"`.
    public var name: String { "neumann-stochastic" }

    /// The stochastic K-term Neumann estimate with step α, J draws, optional mini-batch Hessians, seeded.
    public init(terms: Int, step: Double, samples: Int = 1, batchSize: Int? = nil, seed: UInt64 = 0) {
        self.terms = terms
        self.step = step
        self.samples = samples
        self.batchSize = batchSize
        self.seed = seed
    }

    /// `v̂` for `H v = b` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for K < 1, α ≤ 0, J < 1, `batchSize < 1`, a batch larger
    ///   than the sample count, or a `batchSize` without `problem.lowerBatch` or `lowerSamples`.
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        try validateSolverParameters("StochasticNeumann", count: ("terms", terms), step: step, tolerance: nil)
        guard samples >= 1 else { throw BilevelError.invalidArgument(name: "StochasticNeumann.samples", reason: "must be ≥ 1, got \(samples)") }
        let problem = system.oracle.problem
        if let batchSize { try problem.validateLowerBatch(batchSize, method: "StochasticNeumann") }
        var generator = SeededGenerator(seed: seed)
        func product(_ u: Tensor) throws -> Tensor {
            guard let batchSize else { return system.apply(u) }
            return try system.applyBatch(u, indices: generator.sample(batchSize, from: problem.lowerMiniBatchPopulation))
        }
        var accumulated = Tensor(zeros: b.shape), truncations: [Int] = []
        for _ in 0..<samples {
            let k = Int(generator.next() % UInt64(terms))
            var u = b
            for _ in 0..<k { u = u - step * (try product(u)) }
            accumulated = accumulated + u
            truncations.append(k)
        }
        let v = (step * Double(terms) / Double(samples)) * accumulated
        var solution = try system.finish(v, rhs: b, iterations: truncations.reduce(0, +), solver: name, tolerance: nil, strict: false)
        solution.notes.append("\(name): truncations \(truncations) of K = \(terms) (seed \(seed))" + (batchSize.map { ", mini-batch Hessians of \($0)" } ?? ""))
        return solution
    }
}

extension HessianInverseSolver where Self == StochasticNeumann {
    /// The seeded stochastic K-term Neumann estimate (see `StochasticNeumann`).
    public static func stochasticNeumann(terms: Int, step: Double, samples: Int = 1, batchSize: Int? = nil, seed: UInt64 = 0) -> StochasticNeumann {
        StochasticNeumann(terms: terms, step: step, samples: samples, batchSize: batchSize, seed: seed)
    }
}
