import AutoDiff
import Bilevel
import Workloads

/// The bilevel workloads of workloads.md (P1, P2, P3, P5): every hypergradient method, timed, sized and
/// checked against the exact answer.
enum BilevelSuite {
    /// P2 (size, T) cells: the smallest size in `--quick`; (1000, 100) for every T, and the peers'
    /// (2000, 500) at T = 1000 otherwise.
    static func unrolledCells(quick: Bool) -> [(n: Int, d: Int, steps: Int)] {
        quick ? [10, 100, 1000].map { (200, 20, $0) }
            : [10, 100, 1000].map { (1000, 100, $0) } + [(2000, 500, 1000)]
    }

    static func run(_ bench: inout Bench) throws {
        for size in bench.options.quick ? [RidgeWorkload.sizes[0]] : RidgeWorkload.sizes {
            try ridgeImplicit(&bench, RidgeWorkload(n: size.n, d: size.d))
        }
        var ridges: [String: RidgeWorkload] = [:]
        for cell in unrolledCells(quick: bench.options.quick) {
            let key = "\(cell.n)x\(cell.d)"
            if ridges[key] == nil { ridges[key] = RidgeWorkload(n: cell.n, d: cell.d) }
            try ridgeUnrolled(&bench, ridges[key]!, steps: cell.steps)
        }
        try hyperCleaning(&bench)
        try signSGD(&bench)
    }

    /// P1: implicit hypergradients given w* (each solver), the closed form through dense solves, and the
    /// one-stage estimate from w*; errors against the closed form.
    static func ridgeImplicit(_ bench: inout Bench, _ ridge: RidgeWorkload) throws {
        let size = "\(ridge.n)x\(ridge.d)", x = ridge.x0, problem = ridge.problem(steps: 1)
        let wStar = ridge.solution(x), exact = ridge.exactHypergradient(x).scalars
        let base = bench.measure("P1-ridge", "function", size: size) { (ridge.lower(x, wStar) + ridge.upper(x, wStar)).scalars }
        bench.measure("P1-ridge", "closed-form", size: size, baseline: base, reference: exact) { ridge.exactHypergradient(x).scalars }
        closedFormPieces(&bench, ridge, size: size, baseline: base, reference: exact)
        func implicitRow<S: HessianInverseSolver>(_ method: String, _ solver: S, iterations: Int) throws {
            let implicit = Implicit(solver: solver)
            try bench.measure("P1-ridge", method, size: size, steps: iterations, baseline: base,
                              reference: exact) {
                try implicit.hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient.scalars
            }
        }
        try implicitRow("implicit-cg", ConjugateGradient(maxIterations: ridge.d, tolerance: 1e-12), iterations: ridge.d)
        try implicitRow("implicit-neumann", NeumannSeries(terms: 200, step: ridge.eta), iterations: 200)
        try implicitRow("implicit-fixed-point", FixedPointSolver(iterations: 200, step: ridge.eta), iterations: 200)
        try implicitRow("implicit-exact", ExactSolve(), iterations: 0)
        let oneStage = OneStage(), stepped = ridge.problem(steps: 1)
        try bench.measure("P1-ridge", "one-stage", size: size, steps: 1, baseline: base,
                          reference: exact) {
            try oneStage.hypergradient(of: stepped, at: x, from: wStar).hypergradient.scalars
        }
    }

    /// The closed form's pieces, timed alone: the Gram product `AᵀA` (the symmetric half-work kernel),
    /// H formed, its factorisation, the rest given the factorisation (two pairs of triangular solves and
    /// the products with C); and `staged-closed-form`: the closed form staged with A, b, C, dv constants,
    /// so `optimized()` folds `AᵀA/n` and `Aᵀb/n` once (its `stage_ms` in the notes) and the row times
    /// the diagonal update, the factorisation and the solves.
    static func closedFormPieces(_ bench: inout Bench, _ ridge: RidgeWorkload, size: String, baseline base: Double?, reference exact: [Double]) {
        let x = ridge.x0, h = ridge.hessian(x), factorization = CholeskyFactorization(h)
        bench.measure("P1-ridge", "closed-form-gram", size: size) {
            matmul(ridge.a, ridge.a, transposeA: true, transposeB: false).scalars
        }
        bench.measure("P1-ridge", "closed-form-hessian", size: size) { ridge.hessian(x).scalars }
        bench.measure("P1-ridge", "closed-form-factor", size: size) { cholesky(h).scalars }
        bench.measure("P1-ridge", "closed-form-solves", size: size) {
            let w = factorization.solve(matmul(ridge.b, ridge.a) / Double(ridge.n))
            return factorization.solve(matmul(matmul(ridge.c, w) - ridge.dv, ridge.c) / Double(ridge.m)).scalars
        }
        guard bench.options.selects("P1-ridge", "staged-closed-form", size) else { return }
        let start = Measurement.now()
        let program = stage(shape: [ridge.d]) { ridge.exactHypergradient($0) }.optimized()
        bench.notes.append(String(
            format: "P1-ridge %@: stage_ms %.1f (stage + optimize the closed form, AᵀA/n folded; ops %d)",
            size, Measurement.now() - start, program.applicationCount))
        bench.measure("P1-ridge", "staged-closed-form", size: size, baseline: base, reference: exact) { program(x).scalars }
    }

    /// P2 (inner steps through the fused normal product, `RidgeWorkload.fusedGradientDescent`): T plain
    /// inner steps, then RAD, TRAD (M = 10) and FAD (d JVPs a step, so only where d·T is
    /// moderate); errors against the reference loops of workloads.md.
    static func ridgeUnrolled(_ bench: inout Bench, _ ridge: RidgeWorkload, steps: Int) throws {
        let size = "\(ridge.n)x\(ridge.d)", x = ridge.x0, problem = ridge.problem(steps: steps, dynamics: ridge.fusedGradientDescent)
        let w0 = Tensor(zeros: [ridge.d]), oracle = BilevelOracle(problem)
        guard ["function", "RAD", "TRAD", "FAD"].contains(where: { bench.options.selects("P2-unrolled", $0, size) }) else { return }
        let full = ridge.unrolledHypergradient(x, steps: steps).scalars
        let base = try bench.measure("P2-unrolled", "function", size: size, steps: steps) {
            try oracle.unroll(from: w0, x, steps: steps, like: w0).final.scalars
        }
        let methods: [(String, any HypergradientMethod, [Double])] = [
            ("RAD", ReverseUnroll(), full),
            ("TRAD", TruncatedReverseUnroll(truncation: min(10, steps)), ridge.unrolledHypergradient(x, steps: steps, truncation: min(10, steps)).scalars),
        ] + (ridge.d * steps <= 100_000 ? [("FAD", ForwardUnroll(), full)] : [])
        for (name, method, reference) in methods {
            try bench.measure("P2-unrolled", name, size: size, steps: steps, baseline: base,
                              reference: reference) {
                try method.hypergradient(of: problem, at: x, from: w0).hypergradient.scalars
            }
        }
    }

    /// P3 given w* (Newton): CG for 10 and 50 iterations, Neumann (α = 15, K = 50), the dense exact solve;
    /// and RAD over 100 gradient steps from 0 (an approximation of the same hypergradient).
    static func hyperCleaning(_ bench: inout Bench) throws {
        let p3 = HyperCleaningWorkload(), size = "n500-m200-d50", x = p3.x0
        let problem = p3.problem(steps: 100, step: 15), wStar = p3.solution(x)
        let exact = p3.exactHypergradient(x, at: wStar).scalars
        let base = bench.measure("P3-cleaning", "function", size: size) { (p3.lower(x, wStar) + p3.upper(x, wStar)).scalars }
        func implicitRow<S: HessianInverseSolver>(_ method: String, _ solver: S, iterations: Int) throws {
            let implicit = Implicit(solver: solver)
            try bench.measure("P3-cleaning", method, size: size, steps: iterations, baseline: base,
                              reference: exact) {
                try implicit.hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient.scalars
            }
        }
        try implicitRow("implicit-cg", ConjugateGradient(maxIterations: 10, tolerance: 0), iterations: 10)
        try implicitRow("implicit-cg", ConjugateGradient(maxIterations: 50, tolerance: 0), iterations: 50)
        try implicitRow("implicit-neumann", NeumannSeries(terms: 50, step: 15), iterations: 50)
        try implicitRow("implicit-exact", ExactSolve(), iterations: 0)
        let rad = ReverseUnroll(), w0 = Tensor(zeros: [p3.d])
        try bench.measure("P3-cleaning", "RAD", size: size, steps: 100, baseline: base,
                          reference: exact) {
            try rad.hypergradient(of: problem, at: x, from: w0).hypergradient.scalars
        }
    }

    /// P5: sign-SGD inner loop; the hypergradient must be exactly `0.02 x`.
    static func signSGD(_ bench: inout Bench) throws {
        let ridge = RidgeWorkload(n: 200, d: 20), problem = ridge.signProblem(), x = ridge.x0
        let w0 = Tensor(zeros: [ridge.d]), oracle = BilevelOracle(problem), method = SignUnroll()
        let base = try bench.measure("P5-sign", "function", size: "200x20", steps: 100) {
            try oracle.unroll(from: w0, x, steps: 100, like: w0).final.scalars
        }
        try bench.measure("P5-sign", "sign", size: "200x20", steps: 100, baseline: base,
                          reference: (0.02 * x).scalars) {
            try method.hypergradient(of: problem, at: x, from: w0).hypergradient.scalars
        }
    }
}
