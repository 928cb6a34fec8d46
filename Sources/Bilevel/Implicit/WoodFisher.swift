/// The WoodFisher approximation of `H⁻¹` (seed 000; Singh & Alistarh, NeurIPS 2020): the Hessian is
/// replaced by a damped empirical Fisher matrix and inverted exactly by rank-one Woodbury
/// (Sherman–Morrison) updates,
///
///     H ≈ γ I + (1/N) Σₖ gₖ gₖᵀ,
///     H₀⁻¹ = I/γ,   Hₖ⁻¹ = Hₖ₋₁⁻¹ − uₖ uₖᵀ / (N + gₖᵀ uₖ),   uₖ = Hₖ₋₁⁻¹ gₖ,
///
/// and `v = H_N⁻¹ b`. Two sources of the vectors gₖ:
/// - `.lowerGradient` (one-shot): the single full lower gradient `g = ∇ᵧf(x, ŷ)`, N = 1, so
///   `v = (b − g (gᵀb) / (γ + gᵀg)) / γ`; exact when `H = γ I + g gᵀ`.
/// - `.perSample(count:seed:)` (iterative): the per-sample gradients `∇ᵧ fₖ` of the problem's `lowerBatch`
///   (one sample per batch), for all samples or `count` of them drawn by `SeededGenerator(seed:)`.
///
/// No Hessian-vector products. Cost: N gradients and O(N² n) flops, O(N n) memory (the uₖ are kept, no
/// n × n matrix). With a constrained lower level the gₖ are projected onto the null space of the active
/// rows. `compareWith` measures the approximation against a CG solve.
public struct WoodFisher: HessianInverseSolver {
    /// Where the rank-one vectors come from.
    public enum Curvature {
        /// The full lower gradient at the inner solution (one-shot WoodFisher).
        case lowerGradient
        /// Per-sample lower gradients from `problem.lowerBatch`: all samples (`count == nil`) or `count`
        /// distinct ones drawn with the given seed (iterative WoodFisher).
        case perSample(count: Int?, seed: UInt64)
    }

    /// The damping γ > 0.
    public var damping: Double
    /// The source of the vectors gₖ.
    public var curvature: Curvature
    /// A reference solver to measure the approximation against (`referenceError`), or `nil`.
    public var compareWith: ConjugateGradient?

    /// `"woodfisher"` (one-shot) or `"woodfisher-iterative"`.
    public var name: String {
        if case .perSample = curvature { return "woodfisher-iterative" }
        return "woodfisher"
    }

    /// WoodFisher with damping γ and the given curvature source.
    public init(damping: Double, curvature: Curvature = .lowerGradient, compareWith: ConjugateGradient? = nil) {
        self.damping = damping
        self.curvature = curvature
        self.compareWith = compareWith
    }

    /// `v = (γ I + (1/N) Σ gₖ gₖᵀ)⁻¹ b` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for γ ≤ 0, a per-sample curvature without
    ///   `problem.lowerBatch`, or a `count` outside `1...lowerSampleCount`.
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        try requirePositive("WoodFisher.damping", damping)
        let oracle = system.oracle, problem = oracle.problem
        var vectors: [[Double]]
        switch curvature {
        case .lowerGradient:
            vectors = [oracle.lowerGradients(system.x, system.y).y.scalars]
        case let .perSample(count, seed):
            guard problem.lowerBatch != nil, problem.lowerSampleCount >= 1 else {
                throw BilevelError.invalidArgument(name: "WoodFisher.perSample", reason: "needs the problem's per-sample lower losses (lowerBatch with lowerSampleCount ≥ 1)")
            }
            let population = problem.lowerSampleCount
            if let count, !(1...population).contains(count) {
                throw BilevelError.invalidArgument(name: "WoodFisher.perSample.count", reason: "must be in 1...\(population) (lowerSampleCount), got \(count)")
            }
            var generator = SeededGenerator(seed: seed)
            let indices = count.map { generator.sample($0, from: population) } ?? Array(0..<population)
            vectors = try indices.map { try oracle.lowerBatchGradients(system.x, system.y, indices: [$0]).y.scalars }
        }
        vectors = vectors.map { system.project(Tensor(shape: b.shape, scalars: $0)).scalars }
        let v = Tensor(shape: b.shape, scalars: Self.inverseTimes(b.scalars, vectors: vectors, damping: damping))
        var solution = LinearSolution(
            solution: v, iterations: 0, residual: nil, converged: true,
            notes: ["\(name): γ = \(damping), \(vectors.count) rank-one Woodbury updates, no HVPs"])
        solution.referenceError = try system.referenceError(of: v, rhs: b, reference: compareWith)
        return solution
    }

    /// `(γ I + (1/N) Σ gₖ gₖᵀ)⁻¹ b` by the Woodbury recursion, keeping `uₖ` and `N + gₖᵀuₖ`.
    static func inverseTimes(_ b: [Double], vectors: [[Double]], damping gamma: Double) -> [Double] {
        let count = Double(vectors.count)
        var updates: [(u: [Double], denominator: Double)] = []
        func apply(_ r: [Double]) -> [Double] {
            var out = r.map { $0 / gamma }
            for (u, denominator) in updates {
                let c = innerProduct(u, r) / denominator
                for i in out.indices { out[i] -= c * u[i] }
            }
            return out
        }
        for g in vectors {
            let u = apply(g)
            updates.append((u, count + innerProduct(g, u)))
        }
        return apply(b)
    }
}

extension HessianInverseSolver where Self == WoodFisher {
    /// One-shot WoodFisher, `H ≈ γ I + g gᵀ` with `g = ∇ᵧf` (see `WoodFisher`).
    public static func woodFisher(damping: Double, compareWith: ConjugateGradient? = nil) -> WoodFisher {
        WoodFisher(damping: damping, curvature: .lowerGradient, compareWith: compareWith)
    }

    /// Iterative WoodFisher over per-sample lower gradients (see `WoodFisher`).
    public static func iterativeWoodFisher(damping: Double, samples count: Int? = nil, seed: UInt64 = 0, compareWith: ConjugateGradient? = nil) -> WoodFisher {
        WoodFisher(damping: damping, curvature: .perSample(count: count, seed: seed), compareWith: compareWith)
    }
}
