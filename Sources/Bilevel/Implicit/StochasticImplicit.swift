/// The stochastic implicit hypergradient with an SGD lower level (Zhang et al. 2024, Algorithm 3, the (S)GD
/// branch; Ghadimi & Wang 2018's BSA estimator): every derivative is taken on mini-batches of
/// `problem.lowerBatch` or `lowerSamples` (and `upperBatch` or `upperSamples` when set) of size b, drawn
/// afresh from `SeededGenerator(seed:)`:
///
///     lower level:  y_{t+1} = y_t − η ∇ᵧf_{B_t}(x, y_t),  t < T            (SGD, from y0)
///     v = α Σ_{k<K} (I − α H_{B'_k}) ⋯ (I − α H_{B'_1}) ∇ᵧF_{B''}(x, y_T)   (Zhang et al. 2024, eq. 6, one fresh
///                                                                           mini-batch Hessian per factor)
///     ĝ = ∇ₓF_{B''}(x, y_T) − ∇²ₓᵧf_{B'''}(x, y_T) v.
///
/// The factors are independent with mean `I − αH`, so given y_T the estimate is unbiased for the K-term
/// Neumann hypergradient; every source of noise (SGD iterate, Hessians, mixed product, upper gradient)
/// has variance O(1/b), so the estimate's variance falls like 1/b (measured slope −1 on P1 in the
/// tests; the bench notes list it against b). The truncation K is deterministic: unlike
/// `StochasticNeumann` it adds no variance that batches cannot remove.
///
/// Cost: T + 1 batch gradients, K − 1 batch HVPs, one batch mixed product — each on b samples instead of
/// n; memory O(|y|). With a `SampleLoss` and `derivatives: .staged`, each batch derivative replays one
/// program over the b gathered sample rows (staged once per b; `BilevelOracle.lowerBatchGradients`). Use it when the lower objective is a sum over many samples and full gradients are
/// too costly; deterministic given the seed (vary it per outer step with `minimize(_:methodAtStep:…)`).
public struct StochasticImplicit: HypergradientMethod {
    /// The mini-batch size b.
    public var batchSize: Int
    /// The SGD steps T, or `nil` for `problem.innerSteps`.
    public var innerSteps: Int?
    /// The SGD step η, or `nil` for the step of the problem's `.gradientDescent` dynamics.
    public var innerStep: Double?
    /// The Neumann terms K ≥ 1.
    public var terms: Int
    /// The Neumann step α (needs `α < 2/λ_max` of every mini-batch Hessian), or `nil` for η.
    public var neumannStep: Double?
    /// The seed of the mini-batch sampler.
    public var seed: UInt64

    /// `"implicit-stochastic"`.
    public var name: String { "implicit-stochastic" }

    /// Algorithm 3 with batches of `batchSize` (see the type's documentation).
    public init(batchSize: Int, innerSteps: Int? = nil, innerStep: Double? = nil, terms: Int = 20, neumannStep: Double? = nil, seed: UInt64 = 0) {
        self.batchSize = batchSize
        self.innerSteps = innerSteps
        self.innerStep = innerStep
        self.terms = terms
        self.neumannStep = neumannStep
        self.seed = seed
    }

    /// The estimate at `x`, SGD from `y0`; `innerSolution` is y_T.
    ///
    /// - Throws: `BilevelError.unsupportedConstraints` for lower-level constraints; `.invalidArgument` for a bad batch size (or neither `lowerBatch` nor `lowerSamples`), a step ≤ 0 or a
    ///   missing step, K < 1; `.invalidSteps` for T < 1; `.nonFinite` naming the SGD step or the series.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        let steps = try problem.firstOrderSteps(innerSteps, for: self, x: x, y0: y0)
        let eta = try problem.firstOrderStep(innerStep, method: "StochasticImplicit")
        let alpha = neumannStep ?? eta
        try requirePositive("StochasticImplicit.neumannStep (α)", alpha)
        guard terms >= 1 else { throw BilevelError.invalidArgument(name: "StochasticImplicit.terms (K)", reason: "must be ≥ 1, got \(terms)") }
        let oracle = BilevelOracle(problem)
        let source = try GradientSource(oracle, batchSize: batchSize, seed: seed, method: "StochasticImplicit")
        return try timed(oracle) { diagnostics in
            let y = try source.lowerDescent(x, from: y0, steps: steps, step: eta)
            let upper = try source.upper(x, y)
            var term = upper.y, v = alpha * upper.y
            for _ in 1..<terms {
                term = term - alpha * (try oracle.lowerBatchHVP(x, y, term, indices: source.lowerIndices()!))
                v = v + alpha * term
            }
            if v.hasNonFinite { throw BilevelError.nonFinite(quantity: "StochasticImplicit's Neumann series (α = \(alpha) too large?)", step: nil) }
            let estimate = upper.x - (try oracle.lowerBatchMixedProduct(x, y, v, indices: source.lowerIndices()!))
            diagnostics.innerSteps = steps
            diagnostics.solverIterations = terms - 1
            diagnostics.notes.append("StochasticImplicit: batches of \(batchSize) (seed \(seed)), η = \(eta), K = \(terms), α = \(alpha)")
            return (estimate, y)
        }
    }
}
