import AutoDiff
import Foundation
import Workloads

/// P4 through staged programs: each derivative is staged once (and optimized), then replayed; the rows
/// sit next to the eager rows of the same run (EngineSuite), with the ratio to the same plain `function`
/// row (P2's staged rows run through the Bilevel methods: `StagedBilevelSuite`). `stage_ms` (staging +
/// optimizing) is reported once per workload, in the notes.
enum StagedSuite {
    static func run(_ bench: inout Bench) {
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
}
