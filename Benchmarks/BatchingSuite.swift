import AutoDiff
import Bilevel
import Foundation
import Workloads

/// Batched programs (`Program.vmap`) against loops of the unbatched program, in one run:
/// - P4 MLP per-sample gradients (B = 128): the staged gradient of one sample's loss, vmapped over the
///   samples (`per-sample-vmap`), against 128 calls of the staged gradient (`per-sample-loop`, the
///   ratio's baseline); both checked against 128 eager gradients.
/// - Rosenbrock n = 1000 Hessian: `Program.hessian()` (the gradient's VJP batched over the identity's
///   rows, `hessian-vmap`) against n forward-over-reverse HVPs on the basis (`hessian-hvp-loop`, the
///   baseline); both checked against the engine's `hessian(at:of:)`.
/// - P3 hyper-cleaning WoodFisher gradients gₖ = ∇_w ℓₖ for all n = 500 training samples at x0: the
///   oracle's `lowerSampleGradients` on the problem's `SampleLoss`, staged (one vmapped program,
///   `samples-vmap`) and eager (`samples-eager-loop`), against 500 `lowerBatchGradients` calls on the
///   `lowerBatch` closure (`lowerBatch-loop`, the baseline, WoodFisher's path without a `SampleLoss`);
///   all checked against the baseline's rows. And the whole one-shot WoodFisher solve on each form, and
///   StochasticImplicit (b = 50, T = 20, K = 20) on the `lowerBatch` closure against the staged
///   `SampleLoss` (its batch derivatives one program each over the gathered rows).
/// Each program is staged, batched and optimized once, outside the timings (`stage_ms` in the notes).
enum BatchingSuite {
    static func run(_ bench: inout Bench) throws {
        perSampleRows(&bench)
        hessianRows(&bench)
        try woodFisherRows(&bench)
    }

    /// One sample's loss of P4's MLP, `softplus(−y (w₂ · tanh(x W₁ + b₁) + b₂))`, with θ flattened as in
    /// `MLPWorkload` (W₁ row-major, then b₁, w₂, b₂).
    static func sampleLoss(_ theta: Tensor, _ x: Tensor, _ y: Tensor, inputs d: Int, hidden h: Int) -> Tensor {
        let w1 = theta[0..<(d * h)].reshaped(to: [d, h])
        let b1 = theta[(d * h)..<(d * h + h)]
        let w2 = theta[(d * h + h)..<(d * h + 2 * h)]
        let b2 = theta[(d * h + 2 * h)..<(d * h + 2 * h + 1)].reshaped(to: [])
        let score = dot(tanh(matmul(x, w1) + b1), w2) + b2
        return softplus(-(y * score))
    }

    static func perSampleRows(_ bench: inout Bench) {
        let (workload, size) = ("P4-mlp", "B128-D32-H64")
        guard ["per-sample-loop", "per-sample-vmap"].contains(where: { bench.options.selects(workload, $0, size) }) else { return }
        let mlp = MLPWorkload()
        let (b, d, h) = (mlp.batch, mlp.inputs, mlp.hidden)
        let loss: ([Tensor]) -> Tensor = { sampleLoss($0[0], $0[1], $0[2], inputs: d, hidden: h) }
        let start = Measurement.now()
        let staged = stage(shapes: [mlp.theta.shape, [d], []], outputs: { a in [gradient(at: a[0]) { loss([$0, a[1], a[2]]) }] })
        let vmapped = staged.vmap(batchedInputs: [false, true, true], batchSize: b).optimized()
        let single = staged.optimized()
        bench.notes.append(String(
            format: "%@ %@ per-sample: stage_ms %.1f (stage, vmap, optimize; ops %d batched / %d per sample)",
            workload, size, Measurement.now() - start, vmapped.applicationCount, single.applicationCount))
        let samples = (0..<b).map { (mlp.x[$0], mlp.y[$0]) }
        let reference = samples.flatMap { sample in gradient(at: mlp.theta) { loss([$0, sample.0, sample.1]) }.scalars }
        let loop = bench.measure(workload, "per-sample-loop", size: size, reference: reference) {
            samples.flatMap { single(mlp.theta, $0.0, $0.1).scalars }
        }
        bench.measure(workload, "per-sample-vmap", size: size, baseline: loop, reference: reference) {
            vmapped(mlp.theta, mlp.x, mlp.y).scalars
        }
    }

    static func hessianRows(_ bench: inout Bench) {
        let (workload, n) = ("P4-rosenbrock", 1000)
        let size = "n\(n)"
        guard ["hessian-hvp-loop", "hessian-vmap"].contains(where: { bench.options.selects(workload, $0, size) }) else { return }
        let w = RosenbrockWorkload(n: n)
        let start = Measurement.now()
        let program = stage(shape: [n], w.value)
        let batched = program.hessian().optimized()
        let hvpProgram = program.hvp(mode: .forwardOverReverse).optimized()
        bench.notes.append(String(
            format: "%@ %@ hessian: stage_ms %.1f (stage, batch, optimize; ops %d batched / %d per HVP)",
            workload, size, Measurement.now() - start, batched.applicationCount, hvpProgram.applicationCount))
        let basis = (0..<n).map { i in Tensor(shape: [n]) { $0 == i ? 1 : 0 } }
        let reference = hessian(at: w.x, of: w.value).scalars
        let loop = bench.measure(workload, "hessian-hvp-loop", size: size, reference: reference) {
            basis.flatMap { hvpProgram(w.x, $0).scalars }
        }
        bench.measure(workload, "hessian-vmap", size: size, baseline: loop, reference: reference) { batched(w.x).scalars }
    }

    static func woodFisherRows(_ bench: inout Bench) throws {
        let (workload, size) = ("P3-cleaning", "n500-d50")
        let methods = [
            "gk-lowerBatch-loop", "gk-samples-eager-loop", "gk-samples-vmap", "woodfisher-lowerBatch", "woodfisher-samples-vmap",
            "stochastic-implicit-lowerBatch", "stochastic-implicit-samples-staged",
        ]
        guard methods.contains(where: { bench.options.selects(workload, $0, size) }) else { return }
        let cleaning = HyperCleaningWorkload()
        let x = cleaning.x0, w = cleaning.solution(x), all = Array(0..<cleaning.n)
        let closures = cleaning.problem(steps: 1)
        let eager = try cleaning.perSampleProblem(steps: 1), staged = try cleaning.perSampleProblem(steps: 1, derivatives: .staged)
        let start = Measurement.now()
        _ = try BilevelOracle(staged).lowerSampleGradients(x, w, indices: all)
        let summary = staged.stagedPrograms.map(\.description).joined(separator: "; ")
        bench.notes.append(String(format: "%@ %@ per-sample gradients: stage_ms %.1f incl. first run (%@)", workload, size, Measurement.now() - start, summary))
        let reference = try all.flatMap { try BilevelOracle(closures).lowerBatchGradients(x, w, indices: [$0]).y.scalars }
        let loop = try bench.measure(workload, "gk-lowerBatch-loop", size: size, reference: reference) {
            let oracle = BilevelOracle(closures)
            return try all.flatMap { try oracle.lowerBatchGradients(x, w, indices: [$0]).y.scalars }
        }
        try bench.measure(workload, "gk-samples-eager-loop", size: size, baseline: loop, reference: reference) {
            try BilevelOracle(eager).lowerSampleGradients(x, w, indices: all).scalars
        }
        try bench.measure(workload, "gk-samples-vmap", size: size, baseline: loop, reference: reference) {
            try BilevelOracle(staged).lowerSampleGradients(x, w, indices: all).scalars
        }
        let rhs = gradient(at: w) { cleaning.upper(x, $0) }, solver = WoodFisher.woodFisher(damping: 0.05)
        let solution = try solver.solve(LinearSystem(oracle: BilevelOracle(closures), x: x, y: w), rhs: rhs).solution.scalars
        let solve = try bench.measure(workload, "woodfisher-lowerBatch", size: size, reference: solution) {
            try solver.solve(LinearSystem(oracle: BilevelOracle(closures), x: x, y: w), rhs: rhs).solution.scalars
        }
        try bench.measure(workload, "woodfisher-samples-vmap", size: size, baseline: solve, reference: solution) {
            try solver.solve(LinearSystem(oracle: BilevelOracle(staged), x: x, y: w), rhs: rhs).solution.scalars
        }
        let stochastic = StochasticImplicit(batchSize: 50, innerSteps: 20, innerStep: 1, terms: 20, seed: 3)
        let estimate = try stochastic.hypergradient(of: closures, at: x, from: w).hypergradient.scalars
        let viaClosures = try bench.measure(workload, "stochastic-implicit-lowerBatch", size: size, reference: estimate) {
            try stochastic.hypergradient(of: closures, at: x, from: w).hypergradient.scalars
        }
        try bench.measure(workload, "stochastic-implicit-samples-staged", size: size, baseline: viaClosures, reference: estimate) {
            try stochastic.hypergradient(of: staged, at: x, from: w).hypergradient.scalars
        }
    }
}
