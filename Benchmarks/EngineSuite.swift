import AutoDiff
import Foundation
import Workloads
import _Differentiation

/// P4 of workloads.md and the per-op cost of the tape: the engine's transforms against the plain
/// function.
enum EngineSuite {
    static func run(_ bench: inout Bench) {
        mlp(&bench)
        for n in bench.options.quick ? [1000] : [1000, 100_000] { rosenbrock(&bench, n: n) }
        scalarChain(&bench, length: bench.options.quick ? 100_000 : 1_000_000)
    }

    /// P4 MLP. References: central differences for the gradient (step 1e-6, error about 1e-9), the
    /// forward-over-reverse HVP for both HVP rows (they are checked against each other).
    static func mlp(_ bench: inout Bench) {
        let w = MLPWorkload(), theta = w.theta
        let differences = (0..<theta.count).map { p -> Double in
            var plus = theta.scalars, minus = theta.scalars
            plus[p] += 1e-6
            minus[p] -= 1e-6
            return (w.loss(Tensor(plus)).scalar - w.loss(Tensor(minus)).scalar) / 2e-6
        }
        let reference = hvp(at: theta, direction: w.direction, mode: .forwardOverReverse, of: w.loss).scalars
        transformRows(&bench, "P4-mlp", size: "B128-D32-H64", at: theta, direction: w.direction,
                      gradientReference: differences, hvpReference: reference,
                      function: w.loss, compiled: { w.loss($0) })
    }

    /// P4 Rosenbrock, against its analytic gradient and Hessian.
    static func rosenbrock(_ bench: inout Bench, n: Int) {
        let w = RosenbrockWorkload(n: n)
        transformRows(&bench, "P4-rosenbrock", size: "n\(n)", at: w.x, direction: w.direction,
                      gradientReference: w.exactGradient(w.x), hvpReference: w.exactHVP(w.x, w.direction),
                      function: w.value, compiled: { w.value($0) })
    }

    /// The rows `function`, `gradient`, `compiler-gradient`, `hvp-rr`, `hvp-fr`, `jvp` of one function,
    /// each with its ratio to `function`; the JVP is checked against `⟨gradientReference, v⟩`.
    static func transformRows(
        _ bench: inout Bench, _ workload: String, size: String, at x: Tensor, direction v: Tensor,
        gradientReference: [Double], hvpReference: [Double],
        function f: @escaping (Tensor) -> Tensor, compiled: @differentiable(reverse) @escaping (Tensor) -> Tensor
    ) {
        let directional = zip(gradientReference, v.scalars).map(*).reduce(0, +)
        let base = bench.measure(workload, "function", size: size) { f(x).scalars }
        let tape = bench.measure(workload, "gradient", size: size, baseline: base, reference: gradientReference) {
            gradient(at: x, of: f).scalars
        }
        let compiler = bench.measure(workload, "compiler-gradient", size: size, baseline: base, reference: gradientReference) {
            compilerGradient(at: x, of: compiled).scalars
        }
        if let compiler, let tape {
            bench.notes.append(String(format: "%@ %@: compiler-gradient / tape gradient = %.2f", workload, size, compiler / tape))
        }
        bench.measure(workload, "hvp-rr", size: size, baseline: base, reference: hvpReference) {
            hvp(at: x, direction: v, of: f).scalars
        }
        bench.measure(workload, "hvp-fr", size: size, baseline: base, reference: hvpReference) {
            hvp(at: x, direction: v, mode: .forwardOverReverse, of: f).scalars
        }
        bench.measure(workload, "jvp", size: size, baseline: base, reference: [directional]) {
            [jvp(at: x, direction: v, of: f).tangent.scalar]
        }
    }

    /// A chain of `length` scalar ops (`y ← sin(y · 1.0000001)`, two ops a step): the per-op cost of
    /// recording and back-propagating, against the plain evaluation; the gradient against the chain rule
    /// evaluated by hand.
    static func scalarChain(_ bench: inout Bench, length: Int) {
        let size = "ops\(length)"
        func chain(_ x: Tensor) -> Tensor {
            var y = x
            for _ in 0..<(length / 2) { y = sin(y * 1.0000001) }
            return y
        }
        var y = 0.3, derivative = 1.0
        for _ in 0..<(length / 2) {
            derivative *= Foundation.cos(y * 1.0000001) * 1.0000001
            y = Foundation.sin(y * 1.0000001)
        }
        let base = bench.measure("scalar-chain", "function", size: size) { chain(Tensor(0.3)).scalars }
        let tape = bench.measure("scalar-chain", "gradient", size: size, baseline: base, reference: [derivative]) {
            gradient(at: Tensor(0.3), of: chain).scalars
        }
        if let base, let tape {
            bench.notes.append(String(
                format: "scalar chain of %d ops: %.0f ns/op plain, %.0f ns/op under gradient (record + backward), %.0f ns/op tape overhead",
                length, base * 1e6 / Double(length), tape * 1e6 / Double(length), (tape - base) * 1e6 / Double(length)))
        }
    }
}
