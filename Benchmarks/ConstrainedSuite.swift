import Bilevel
import Workloads

/// Constrained lower levels and cheap Hessian-inverse approximations on the box-constrained P1 and P3
/// (`boxProblem()`): the active-set lower solve as the baseline, then each hypergradient at that solution
/// (KKT with CG and with the dense solve, Hessian-free, WoodFisher, and on P3 iterative WoodFisher over
/// the 500 per-sample losses) and SIGD (its own perturbed lower solves included); errors against the
/// closed forms `boxExactHypergradient`.
enum ConstrainedSuite {
    static func run(_ bench: inout Bench) throws {
        for size in bench.options.quick ? [RidgeWorkload.sizes[0]] : Array(RidgeWorkload.sizes[0...1]) {
            let ridge = RidgeWorkload(n: size.n, d: size.d)
            try rows(&bench, "P1-ridge-box", "\(size.n)x\(size.d)", ridge.boxProblem(), x: ridge.x0, dimension: ridge.d, hessian: { _ in ridge.hessian(ridge.x0) },
                     exact: { ridge.boxExactHypergradient(ridge.x0, at: $0) }, perSampleDamping: exp(ridge.x0).mean().scalar, woodFisherBatch: 10)
        }
        let p3 = HyperCleaningWorkload()
        try rows(&bench, "P3-cleaning-box", "n500-m200-d50", p3.boxProblem(), x: p3.x0, dimension: p3.d, hessian: { w in hessian(at: w) { p3.lower(p3.x0, $0) } },
                 exact: { p3.boxExactHypergradient(p3.x0, at: $0) }, perSampleDamping: 2e-3, woodFisherBatch: 1, iterative: true)
    }

    /// The rows of one workload (lower variable of `dimension` entries, started at 0). Hessian-free uses the
    /// mean eigenvalue `tr(H)/n` of the dense lower Hessian at w* as λ; WoodFisher (one-shot over
    /// mini-batches of `woodFisherBatch` rows, and with `iterative` over single rows) uses
    /// `perSampleDamping`, the curvature of the ridge term the empirical Fisher lacks.
    static func rows(
        _ bench: inout Bench, _ workload: String, _ size: String, _ problem: BilevelProblem, x: Tensor, dimension: Int,
        hessian: (Tensor) -> Tensor, exact: (Tensor) -> Tensor, perSampleDamping: Double, woodFisherBatch: Int, iterative: Bool = false
    ) throws {
        let methods = ["active-set-lower-solve", "implicit-kkt", "implicit-kkt-exact", "hessian-free", "woodfisher", "woodfisher-iterative", "sigd"]
        guard methods.contains(where: { bench.options.selects(workload, $0, size) }) else { return }
        let lowerSolver = ActiveSetLowerSolver(), start = Tensor(zeros: [dimension])
        let lower = try lowerSolver.solve(problem, at: x, from: start)
        let reference = exact(lower.y).scalars
        let h = hessian(lower.y), n = lower.y.count
        let meanCurvature = (0..<n).reduce(0) { $0 + h.scalars[$1 * n + $1] } / Double(n)
        let base = try bench.measure(workload, "active-set-lower-solve", size: size, steps: lower.iterations) {
            try lowerSolver.solve(problem, at: x, from: start).y.scalars
        }
        func kktRow<S: HessianInverseSolver>(_ method: String, _ solver: S) throws {
            let kkt = KKTImplicit(solver: solver)
            try bench.measure(workload, method, size: size, baseline: base, reference: reference) {
                try kkt.hypergradient(of: problem, at: x, lowerSolution: lower).hypergradient.scalars
            }
        }
        try kktRow("implicit-kkt", ConjugateGradient(maxIterations: n, tolerance: 1e-12))
        try kktRow("implicit-kkt-exact", ExactSolve())
        try kktRow("hessian-free", HessianFree(lambda: meanCurvature))
        try kktRow("woodfisher", WoodFisher(damping: perSampleDamping, curvature: .miniBatches(size: woodFisherBatch, seed: 0)))
        if iterative { try kktRow("woodfisher-iterative", WoodFisher(damping: perSampleDamping, curvature: .perSample(count: nil, seed: 0))) }
        let sigd = SmoothedImplicit(kkt: KKTImplicit(solver: ConjugateGradient(maxIterations: n, tolerance: 1e-12)), sigma: 1e-4, samples: 10, seed: 0)
        try bench.measure(workload, "sigd", size: size, steps: 10, baseline: base, reference: reference) {
            try sigd.hypergradient(of: problem, at: x, from: start).hypergradient.scalars
        }
    }
}
