import AutoDiff
import Bilevel
import Foundation
import Workloads

/// P4 and P2 through staged programs: each derivative is staged once (and optimized), then replayed; the
/// rows sit next to the eager rows of the same run (EngineSuite, BilevelSuite), with the ratio to the
/// same plain `function` row. `stage_ms` (staging + optimizing) is reported once per workload, in the
/// notes.
enum StagedSuite {
    static func run(_ bench: inout Bench) {
        for cell in BilevelSuite.unrolledCells(quick: bench.options.quick) { reverseUnroll(&bench, cell) }
        let mlp = MLPWorkload()
        rows(&bench, "P4-mlp", size: "B128-D32-H64", at: mlp.theta, direction: mlp.direction, function: mlp.loss)
        for n in bench.options.quick ? [1000] : [1000, 100_000] {
            let w = RosenbrockWorkload(n: n)
            rows(&bench, "P4-rosenbrock", size: "n\(n)", at: w.x, direction: w.direction, function: w.value)
        }
    }

    /// The rows `staged-gradient`, `staged-hvp-rr`, `staged-hvp-fr`, `staged-jvp`, each checked against
    /// the eager engine's result.
    static func rows(
        _ bench: inout Bench, _ workload: String, size: String, at x: Tensor, direction v: Tensor,
        function f: @escaping (Tensor) -> Tensor
    ) {
        let methods = ["staged-gradient", "staged-hvp-rr", "staged-hvp-fr", "staged-jvp"]
        guard methods.contains(where: { bench.options.selects(workload, $0, size) }) else { return }
        let base = bench.rows.first { $0.workload == workload && $0.method == "function" && $0.size == size }?.medianMs
        let start = Measurement.now()
        let program = stage(shape: x.shape, f)
        let gradientProgram = program.gradient().optimized()
        let reverseHVP = program.hvp(mode: .reverseOverReverse).optimized()
        let forwardHVP = program.hvp(mode: .forwardOverReverse).optimized()
        let jvpProgram = program.jvp().optimized()
        let stageMs = Measurement.now() - start
        bench.notes.append(String(
            format: "%@ %@: stage_ms %.1f (stage + optimize gradient, two HVPs, JVP; ops %d / %d / %d / %d)",
            workload, size, stageMs, gradientProgram.applicationCount, reverseHVP.applicationCount,
            forwardHVP.applicationCount, jvpProgram.applicationCount))
        bench.measure(workload, methods[0], size: size, baseline: base, reference: gradient(at: x, of: f).scalars) {
            gradientProgram(x).scalars
        }
        let hvpReference = hvp(at: x, direction: v, mode: .forwardOverReverse, of: f).scalars
        bench.measure(workload, methods[1], size: size, baseline: base, reference: hvpReference) { reverseHVP(x, v).scalars }
        bench.measure(workload, methods[2], size: size, baseline: base, reference: hvpReference) { forwardHVP(x, v).scalars }
        bench.measure(workload, methods[3], size: size, baseline: base, reference: jvp(at: x, direction: v, of: f).tangent.scalars) {
            jvpProgram(x, v).scalars
        }
    }

    /// P2 `staged-RAD`: the gradient step Ψ(w, x) = w − η∇_w f(x, w) and its VJP are staged once; the
    /// forward sweep replays Ψ T times (`scan`), the reverse sweep replays the VJP T times. Checked
    /// against the reference loop of workloads.md.
    static func reverseUnroll(_ bench: inout Bench, _ cell: (n: Int, d: Int, steps: Int)) {
        let size = "\(cell.n)x\(cell.d)"
        guard bench.options.selects("P2-unrolled", "staged-RAD", size) else { return }
        let ridge = RidgeWorkload(n: cell.n, d: cell.d), x = ridge.x0, steps = cell.steps
        let base = bench.rows.first {
            $0.workload == "P2-unrolled" && $0.method == "function" && $0.size == size && $0.steps == steps
        }?.medianMs
        let start = Measurement.now()
        let step = stage(shapes: [[ridge.d], [ridge.d]]) { s in
            s[0] - ridge.eta * gradient(at: s[0]) { w in ridge.lower(s[1], w) }
        }.optimized()
        let stepVJP = step.vjp().optimized()
        let upperGradient = stage(shape: [ridge.d]) { w in gradient(at: w) { w in ridge.upper(x, w) } }.optimized()
        bench.notes.append(String(
            format: "P2-unrolled %@: stage_ms %.1f (stage + optimize the step Ψ, its VJP and ∇F; ops %d / %d / %d)",
            size, Measurement.now() - start, step.applicationCount, stepVJP.applicationCount, upperGradient.applicationCount))
        bench.measure("P2-unrolled", "staged-RAD", size: size, steps: steps, baseline: base,
                      reference: ridge.unrolledHypergradient(x, steps: steps).scalars) {
            let states = step.scan(from: Tensor(zeros: [ridge.d]), parameters: [x], steps: steps)
            var adjoint = upperGradient(states[steps]), hypergradient = Tensor(zeros: [ridge.d])
            for t in stride(from: steps - 1, through: 0, by: -1) {
                let adjoints = stepVJP.outputs(at: [states[t], x, adjoint])
                adjoint = adjoints[0]
                hypergradient = hypergradient + adjoints[1]
            }
            return hypergradient.scalars
        }
    }
}
