import AutoDiff
import Bilevel
import Workloads

/// The hypergradient methods on problems with `derivatives: .staged` (each derivative staged once per
/// problem and replayed): CG and Neumann given w* on P1 (2000x500) and P3, RAD/TRAD/FAD on P2, sign
/// unrolling on P5. Same
/// solver settings as the eager twins in `BilevelSuite`, and the ratio to the same `function` row (timed
/// here, unrecorded, when `--filter` left it out). Staging happens before timing: `stage_ms` (staging +
/// optimizing each program the method asked for) is reported once per workload in the notes.
enum StagedBilevelSuite {
    static func run(_ bench: inout Bench) throws {
        let ridgeSizes = bench.options.quick ? [RidgeWorkload.sizes[0]] : [RidgeWorkload.sizes[2]]
        for size in ridgeSizes { try ridgeImplicit(&bench, RidgeWorkload(n: size.n, d: size.d)) }
        try hyperCleaning(&bench)
        try signSGD(&bench)
        var ridges: [String: RidgeWorkload] = [:]
        for cell in BilevelSuite.unrolledCells(quick: bench.options.quick) {
            let key = "\(cell.n)x\(cell.d)"
            if ridges[key] == nil { ridges[key] = RidgeWorkload(n: cell.n, d: cell.d) }
            try ridgeUnrolled(&bench, ridges[key]!, steps: cell.steps)
        }
    }

    /// The median of the eager suite's baseline row of this run, or (filtered out) the same body timed
    /// without adding a row.
    static func baseline(
        _ bench: Bench, _ workload: String, size: String, steps: Int = 0, _ body: () throws -> [Double]
    ) rethrows -> Double {
        if let row = bench.rows.first(where: {
            $0.workload == workload && $0.method == "function" && $0.size == size && $0.steps == steps
        }) { return row.medianMs }
        return try Measurement.run(repeats: bench.options.repeats) { _ = try body() }.median
    }

    /// Runs `method` once on the staged `problem` (staging every program it asks for) and notes how long
    /// staging took and how large the programs are.
    static func stageOnce(
        _ bench: inout Bench, _ label: String, _ problem: BilevelProblem, _ call: () throws -> Void
    ) rethrows {
        try call()
        let programs = problem.stagedPrograms
        let total = programs.reduce(0) { $0 + $1.stageMilliseconds }
        bench.notes.append("\(label): stage_ms \(String(format: "%.1f", total)) (" + programs.map(\.description).joined(separator: "; ") + ")")
    }

    /// P1 given w*: `staged-cg` (CG to 1e-12, at most d iterations), `staged-neumann` (200 terms, step η)
    /// and `staged-exact` (the dense H from one batched HVP replay, Cholesky).
    static func ridgeImplicit(_ bench: inout Bench, _ ridge: RidgeWorkload) throws {
        let size = "\(ridge.n)x\(ridge.d)", x = ridge.x0
        guard ["staged-cg", "staged-neumann", "staged-exact"].contains(where: { bench.options.selects("P1-ridge", $0, size) }) else { return }
        var problem = ridge.problem(steps: 1)
        problem.derivatives = .staged
        let wStar = ridge.solution(x), exact = ridge.exactHypergradient(x).scalars
        let base = baseline(bench, "P1-ridge", size: size) { (ridge.lower(x, wStar) + ridge.upper(x, wStar)).scalars }
        let cg = Implicit(solver: ConjugateGradient(maxIterations: ridge.d, tolerance: 1e-12))
        let neumann = Implicit(solver: NeumannSeries(terms: 200, step: ridge.eta))
        try stageOnce(&bench, "P1-ridge \(size) staged", problem) { _ = try cg.hypergradient(of: problem, at: x, innerSolution: wStar) }
        try bench.measure("P1-ridge", "staged-cg", size: size, steps: ridge.d, baseline: base, reference: exact) {
            try cg.hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient.scalars
        }
        try bench.measure("P1-ridge", "staged-neumann", size: size, steps: 200, baseline: base, reference: exact) {
            try neumann.hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient.scalars
        }
        try bench.measure("P1-ridge", "staged-exact", size: size, steps: 0, baseline: base, reference: exact) {
            try ExactSolve().implicitHypergradient(of: problem, at: x, innerSolution: wStar)
        }
    }

    /// P3 given w*: `staged-cg` for 10 and 50 iterations, `staged-neumann` (α = 15, K = 50), `staged-exact`
    /// (the dense H from one batched HVP replay, Cholesky).
    static func hyperCleaning(_ bench: inout Bench) throws {
        let p3 = HyperCleaningWorkload(), size = "n500-m200-d50", x = p3.x0
        guard ["staged-cg", "staged-neumann", "staged-exact"].contains(where: { bench.options.selects("P3-cleaning", $0, size) }) else { return }
        var problem = p3.problem(steps: 100, step: 15)
        problem.derivatives = .staged
        let wStar = p3.solution(x), exact = p3.exactHypergradient(x, at: wStar).scalars
        let base = baseline(bench, "P3-cleaning", size: size) { (p3.lower(x, wStar) + p3.upper(x, wStar)).scalars }
        let rows: [(String, any HessianInverseSolver, Int)] = [
            ("staged-cg", ConjugateGradient(maxIterations: 10, tolerance: 0), 10),
            ("staged-cg", ConjugateGradient(maxIterations: 50, tolerance: 0), 50),
            ("staged-neumann", NeumannSeries(terms: 50, step: 15), 50),
            ("staged-exact", ExactSolve(), 0),
        ]
        try stageOnce(&bench, "P3-cleaning \(size) staged", problem) {
            _ = try Implicit(solver: ConjugateGradient(maxIterations: 1, tolerance: 0)).hypergradient(of: problem, at: x, innerSolution: wStar)
        }
        for (name, solver, iterations) in rows {
            try bench.measure("P3-cleaning", name, size: size, steps: iterations, baseline: base, reference: exact) {
                try solver.implicitHypergradient(of: problem, at: x, innerSolution: wStar)
            }
        }
    }

    /// P5 (sign-SGD inner loop, T = 100): `staged-function` (the T steps through the staged step) and
    /// `staged-sign` (`SignUnroll` on the staged problem; the hypergradient must be exactly `0.02 x`).
    static func signSGD(_ bench: inout Bench) throws {
        guard ["staged-function", "staged-sign"].contains(where: { bench.options.selects("P5-sign", $0, "200x20") }) else { return }
        let ridge = RidgeWorkload(n: 200, d: 20), x = ridge.x0, w0 = Tensor(zeros: [ridge.d])
        let eager = ridge.signProblem(), eagerOracle = BilevelOracle(eager)
        var problem = eager
        problem.derivatives = .staged
        let base = try baseline(bench, "P5-sign", size: "200x20", steps: 100) {
            try eagerOracle.unroll(from: w0, x, steps: 100, like: w0).final.scalars
        }
        try stageOnce(&bench, "P5-sign 200x20 T=100 staged", problem) { _ = try SignUnroll().hypergradient(of: problem, at: x, from: w0) }
        let stagedOracle = BilevelOracle(problem), eagerValue = try eagerOracle.unroll(from: w0, x, steps: 100, like: w0).final.scalars
        try bench.measure("P5-sign", "staged-function", size: "200x20", steps: 100, baseline: base, reference: eagerValue) {
            try stagedOracle.unroll(from: w0, x, steps: 100, like: w0).final.scalars
        }
        try bench.measure("P5-sign", "staged-sign", size: "200x20", steps: 100, baseline: base, reference: (0.02 * x).scalars) {
            try SignUnroll().hypergradient(of: problem, at: x, from: w0).hypergradient.scalars
        }
    }

    /// P2 (fused gradient step, as the eager rows): `staged-function` (the T steps through the staged step
    /// Ψ, checked against the eager loop's w_T), `staged-RAD`, `staged-TRAD` (M = 10), `staged-FAD` (where
    /// d·T ≤ 1e5, as the eager FAD row), against the reference loops of workloads.md.
    static func ridgeUnrolled(_ bench: inout Bench, _ ridge: RidgeWorkload, steps: Int) throws {
        let size = "\(ridge.n)x\(ridge.d)", x = ridge.x0, w0 = Tensor(zeros: [ridge.d])
        let names = ["staged-function", "staged-RAD", "staged-TRAD", "staged-FAD"]
        guard names.contains(where: { bench.options.selects("P2-unrolled", $0, size) }) else { return }
        let eager = ridge.problem(steps: steps, dynamics: ridge.fusedGradientDescent), oracle = BilevelOracle(eager)
        var problem = eager
        problem.derivatives = .staged
        let base = try baseline(bench, "P2-unrolled", size: size, steps: steps) {
            try oracle.unroll(from: w0, x, steps: steps, like: w0).final.scalars
        }
        let full = ridge.unrolledHypergradient(x, steps: steps).scalars
        let truncation = min(10, steps)
        let methods: [(String, any HypergradientMethod, [Double])] = [
            ("staged-RAD", ReverseUnroll(), full),
            ("staged-TRAD", TruncatedReverseUnroll(truncation: truncation), ridge.unrolledHypergradient(x, steps: steps, truncation: truncation).scalars),
        ] + (ridge.d * steps <= 100_000 ? [("staged-FAD", ForwardUnroll(), full)] : [])
        try stageOnce(&bench, "P2-unrolled \(size) T=\(steps) staged", problem) {
            var once = problem
            once.innerSteps = truncation
            for (_, method, _) in methods { _ = try method.hypergradient(of: once, at: x, from: w0) }
        }
        let stagedOracle = BilevelOracle(problem), eagerValue = try oracle.unroll(from: w0, x, steps: steps, like: w0).final.scalars
        try bench.measure("P2-unrolled", "staged-function", size: size, steps: steps, baseline: base, reference: eagerValue) {
            try stagedOracle.unroll(from: w0, x, steps: steps, like: w0).final.scalars
        }
        for (name, method, reference) in methods {
            try bench.measure("P2-unrolled", name, size: size, steps: steps, baseline: base, reference: reference) {
                try method.hypergradient(of: problem, at: x, from: w0).hypergradient.scalars
            }
        }
    }
}

extension HessianInverseSolver {
    /// The implicit hypergradient given the inner solution, through this solver (opens the existential).
    func implicitHypergradient(of problem: BilevelProblem, at x: Tensor, innerSolution: Tensor) throws -> [Double] {
        try Implicit(solver: self).hypergradient(of: problem, at: x, innerSolution: innerSolution).hypergradient.scalars
    }
}
