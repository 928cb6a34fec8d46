/// The WoodFisher approximation of `H⁻¹` (Zhang et al. 2024, practical considerations of IF; Singh & Alistarh 2020; Li (report)): the
/// Hessian is replaced by a damped empirical Fisher matrix built from the gradients gₖ of the lower loss
/// on single samples or mini-batches, and inverted exactly by the Woodbury identity:
///
///     H ≈ γ I + (1/K) Σₖ gₖ gₖᵀ,   gₖ = ∇ᵧ f_{Bₖ}(x, ŷ)   (f_B = problem.lowerBatch(x, y, B)).
///
/// With `problem.lowerSamples` (a `SampleLoss`) the gₖ come from its per-sample gradients, all of them in
/// one `BilevelOracle.lowerSampleGradients` call (one batched program when the problem is staged), a
/// mini-batch's gₖ being the mean of its samples' gradients; otherwise from one `lowerBatch` gradient
/// per mini-batch.
///
/// At ŷ = y* the full gradient vanishes but the per-sample (mini-batch) gradients do not, so the
/// approximation carries curvature there. Two ways of inverting, after the two of the papers:
/// - `.miniBatches(size:seed:)` (one-shot): the samples, shuffled by `SeededGenerator(seed:)`, are cut into
///   K = ⌈N/size⌉ consecutive mini-batches; with the rows gₖ stacked in G (`[K, n]`) the whole rank-K update
///   is inverted at once, `v = (b − Gᵀ (KγI + GGᵀ)⁻¹ G b) / γ` (one K × K dense solve; when n ≤ K the
///   n × n matrix `γI + GᵀG/K` is solved directly, the smaller of the two). `size: 1` is the
///   full empirical Fisher; `size: N` the seed's rank-one `γI + ggᵀ` with g the full gradient (≈ 0 at y*).
/// - `.perSample(count:seed:)` (iterative, Singh & Alistarh's recursion): single-sample gradients, all N
///   or `count` drawn by `SeededGenerator(seed:)`, folded in one rank-one update at a time,
///   `H₀⁻¹ = I/γ`, `Hₖ⁻¹ = Hₖ₋₁⁻¹ − uₖ uₖᵀ / (K + gₖᵀ uₖ)`, `uₖ = Hₖ₋₁⁻¹ gₖ`.
///
/// Both are exact (to rounding) when `∇²ᵧᵧf = γI + (1/K) Σ gₖgₖᵀ`. No Hessian-vector products. Cost: K
/// gradients; one-shot O(min(K, n)² max(K, n) + min(K, n)³) flops and O(K n + min(K, n)²) memory,
/// iterative O(K² n) flops and O(K n) memory.
/// With a constrained lower level the gₖ are projected onto the null space of the active rows.
/// `compareWith` measures the approximation against a CG solve.
public struct WoodFisher: HessianInverseSolver {
    /// Where the vectors gₖ come from, and how the update is inverted.
    public enum Curvature {
        /// One-shot: gradients over consecutive mini-batches of `size` samples of the seeded shuffle,
        /// inverted at once through the K × K capacitance matrix.
        case miniBatches(size: Int, seed: UInt64)
        /// Iterative: single-sample gradients (of `problem.lowerSamples`, else `lowerBatch`), all samples (`count == nil`) or
        /// `count` distinct ones drawn with the given seed, folded in by rank-one updates.
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

    /// WoodFisher with damping γ and the given curvature source (default: one-shot over single samples).
    public init(damping: Double, curvature: Curvature = .miniBatches(size: 1, seed: 0), compareWith: ConjugateGradient? = nil) {
        self.damping = damping
        self.curvature = curvature
        self.compareWith = compareWith
    }

    /// `v = (γ I + (1/K) Σ gₖ gₖᵀ)⁻¹ b` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for γ ≤ 0, a problem without `lowerSamples` or `lowerBatch`, a
    ///   mini-batch size or a `count` outside `1...N` (the samples of `lowerSamples`, else `lowerSampleCount`).
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        try requirePositive("WoodFisher.damping", damping)
        let oracle = system.oracle, problem = oracle.problem
        let population = problem.lowerSamples?.count ?? problem.lowerSampleCount
        guard problem.lowerSamples != nil || (problem.lowerBatch != nil && population >= 1) else {
            throw BilevelError.invalidArgument(name: "WoodFisher (\(name))", reason: "needs the problem's per-sample lower losses (lowerSamples, or lowerBatch with lowerSampleCount ≥ 1) to build the empirical Fisher; set them, or use HessianFree or CG")
        }
        func gradients(_ batches: [[Int]]) throws -> [[Double]] {
            try Self.batchGradients(batches, oracle: oracle, x: system.x, y: system.y).map { system.project($0.reshaped(to: b.shape)).scalars }
        }
        let v: [Double], count: Int
        switch curvature {
        case let .miniBatches(size, seed):
            guard (1...population).contains(size) else {
                throw BilevelError.invalidArgument(name: "WoodFisher.miniBatches.size", reason: "must be in 1...\(population) (the sample count N), got \(size)")
            }
            var generator = SeededGenerator(seed: seed)
            let order = generator.sample(population, from: population)
            let batches = stride(from: 0, to: population, by: size).map { Array(order[$0..<min($0 + size, population)]) }
            let rows = try gradients(batches)
            v = Self.capacitanceSolve(b.scalars, rows: rows, damping: damping)
            count = rows.count
        case let .perSample(sampleCount, seed):
            if let sampleCount, !(1...population).contains(sampleCount) {
                throw BilevelError.invalidArgument(name: "WoodFisher.perSample.count", reason: "must be in 1...\(population) (the sample count N), got \(sampleCount)")
            }
            var generator = SeededGenerator(seed: seed)
            let indices = sampleCount.map { generator.sample($0, from: population) } ?? Array(0..<population)
            let rows = try gradients(indices.map { [$0] })
            v = Self.inverseTimes(b.scalars, vectors: rows, damping: damping)
            count = rows.count
        }
        let solutionTensor = Tensor(shape: b.shape, scalars: v)
        var solution = LinearSolution(
            solution: solutionTensor, iterations: 0, residual: nil, converged: true,
            notes: ["\(name): γ = \(damping), empirical Fisher of \(count) sample/mini-batch gradients, no HVPs"])
        solution.referenceError = try system.referenceError(of: solutionTensor, rhs: b, reference: compareWith)
        return solution
    }

    /// The gradients `∇ᵧf_{Bₖ}(x, y)` of the lower loss on each batch `Bₖ`: with `lowerSamples`, the mean of
    /// the per-sample gradients of all batches' samples, taken in one `lowerSampleGradients` call (one
    /// batched program when staged; one count per sample); else one `lowerBatchGradients` per batch.
    static func batchGradients(_ batches: [[Int]], oracle: BilevelOracle, x: Tensor, y: Tensor) throws -> [Tensor] {
        guard oracle.problem.lowerSamples != nil else {
            return try batches.map { try oracle.lowerBatchGradients(x, y, indices: $0).y }
        }
        let rows = try oracle.lowerSampleGradients(x, y, indices: batches.flatMap { $0 }).scalars
        var offset = 0
        return batches.map { batch in
            var mean = [Double](repeating: 0, count: y.count)
            for k in offset..<(offset + batch.count) {
                for i in mean.indices { mean[i] += rows[k * y.count + i] }
            }
            offset += batch.count
            return Tensor(shape: y.shape, scalars: mean.map { $0 / Double(batch.count) })
        }
    }

    /// `(γ I + (1/K) GᵀG)⁻¹ b` for the K rows of G (`[K, n]`), by one dense solve in the smaller dimension:
    /// the n × n matrix itself when n ≤ K, else the Woodbury form `(b − Gᵀ (KγI + GGᵀ)⁻¹ G b) / γ` with its
    /// K × K capacitance matrix. Both matrices are positive definite: Cholesky, LU if rounding says
    /// otherwise; the products `GᵀG` or `GGᵀ`, `G b`, `Gᵀ c` are matrix products.
    static func capacitanceSolve(_ b: [Double], rows: [[Double]], damping gamma: Double) -> [Double] {
        let k = rows.count, n = b.count, g = Tensor(shape: [k, n], scalars: rows.flatMap { $0 }), rhs = Tensor(b)
        func shiftedSolve(_ gram: Tensor, shift: Double, _ right: Tensor) -> Tensor {
            let size = gram.shape[0]
            let matrix = gram + Tensor(shape: [size, size]) { $0 / size == $0 % size ? shift : 0 }
            return choleskySolve(matrix, right) ?? AutoDiff.solve(matrix, right)
        }
        if n <= k {
            return shiftedSolve(matmul(g, g, transposeA: true, transposeB: false) / Double(k), shift: gamma, rhs).scalars
        }
        let coefficients = shiftedSolve(matmul(g, g, transposeA: false, transposeB: true), shift: Double(k) * gamma, matmul(g, rhs))
        return ((rhs - matmul(coefficients, g)) / gamma).scalars
    }

    /// `(γ I + (1/K) Σ gₖ gₖᵀ)⁻¹ b` by the Woodbury recursion, keeping `uₖ` and `K + gₖᵀuₖ`.
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
    /// One-shot WoodFisher over mini-batches of `batchSize` samples (default 1: the full empirical Fisher),
    /// see `WoodFisher`.
    public static func woodFisher(damping: Double, batchSize: Int = 1, seed: UInt64 = 0, compareWith: ConjugateGradient? = nil) -> WoodFisher {
        WoodFisher(damping: damping, curvature: .miniBatches(size: batchSize, seed: seed), compareWith: compareWith)
    }

    /// Iterative WoodFisher over per-sample lower gradients (see `WoodFisher`).
    public static func iterativeWoodFisher(damping: Double, samples count: Int? = nil, seed: UInt64 = 0, compareWith: ConjugateGradient? = nil) -> WoodFisher {
        WoodFisher(damping: damping, curvature: .perSample(count: count, seed: seed), compareWith: compareWith)
    }
}
