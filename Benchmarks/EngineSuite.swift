import AutoDiff
import Foundation
import Workloads

/// P4 of workloads.md and the per-op cost of the tape: the engine's transforms against the plain
/// function.
enum EngineSuite {
    static func run(_ bench: inout Bench) {
        mlp(&bench)
        for n in bench.options.quick ? [1000] : [1000, 100_000] { rosenbrock(&bench, n: n) }
        scalarChain(&bench, length: bench.options.quick ? 100_000 : 1_000_000)
    }

    /// `function`, `gradient`, `hvp-rr`, `hvp-fr`, `jvp`. References: the gradient's directional
    /// derivative `⟨∇f, v⟩` against the forward-mode `f'(θ)·v` (and back), the two HVPs against each other.
    static func mlp(_ bench: inout Bench) {
        let w = MLPWorkload(), size = "B128-D32-H64", theta = w.theta, v = w.direction
        let directional = jvp(at: theta, direction: v, of: w.loss).tangent.scalar
        let reverseDirectional = dot(gradient(at: theta, of: w.loss), v).scalar
        let hvpReverse = hvp(at: theta, direction: v, of: w.loss).scalars
        let hvpForward = hvp(at: theta, direction: v, mode: .forwardOverReverse, of: w.loss).scalars
        let base = bench.measure("P4-mlp", "function", size: size) { w.loss(theta).scalars }
        let tapeGradient = gradient(at: theta, of: w.loss)
        let tape = bench.measure("P4-mlp", "gradient", size: size, baseline: base, reference: [directional]) {
            [dot(gradient(at: theta, of: w.loss), v).scalar]
        }
        let compiler = bench.measure("P4-mlp", "compiler-gradient", size: size, baseline: base, reference: tapeGradient.scalars) {
            compilerGradient(at: theta) { w.loss($0) }.scalars
        }
        noteCompilerRatio(&bench, "MLP", compiler: compiler, tape: tape)
        bench.measure("P4-mlp", "hvp-rr", size: size, baseline: base, reference: hvpForward) {
            hvp(at: theta, direction: v, of: w.loss).scalars
        }
        bench.measure("P4-mlp", "hvp-fr", size: size, baseline: base, reference: hvpReverse) {
            hvp(at: theta, direction: v, mode: .forwardOverReverse, of: w.loss).scalars
        }
        bench.measure("P4-mlp", "jvp", size: size, baseline: base, reference: [reverseDirectional]) {
            [jvp(at: theta, direction: v, of: w.loss).tangent.scalar]
        }
    }

    /// The same five rows on Rosenbrock, against its analytic gradient and Hessian.
    static func rosenbrock(_ bench: inout Bench, n: Int) {
        let w = RosenbrockWorkload(n: n), size = "n\(n)", x = w.x, v = w.direction
        let exactGradient = w.exactGradient(x), exactHVP = w.exactHVP(x, v)
        let exactDirectional = zip(exactGradient, v.scalars).map(*).reduce(0, +)
        let base = bench.measure("P4-rosenbrock", "function", size: size) { w.value(x).scalars }
        let tape = bench.measure("P4-rosenbrock", "gradient", size: size, baseline: base, reference: exactGradient) {
            gradient(at: x, of: w.value).scalars
        }
        let compiler = bench.measure("P4-rosenbrock", "compiler-gradient", size: size, baseline: base, reference: exactGradient) {
            compilerGradient(at: x) { w.value($0) }.scalars
        }
        noteCompilerRatio(&bench, "Rosenbrock n=\(n)", compiler: compiler, tape: tape)
        bench.measure("P4-rosenbrock", "hvp-rr", size: size, baseline: base, reference: exactHVP) {
            hvp(at: x, direction: v, of: w.value).scalars
        }
        bench.measure("P4-rosenbrock", "hvp-fr", size: size, baseline: base, reference: exactHVP) {
            hvp(at: x, direction: v, mode: .forwardOverReverse, of: w.value).scalars
        }
        bench.measure("P4-rosenbrock", "jvp", size: size, baseline: base, reference: [exactDirectional]) {
            [jvp(at: x, direction: v, of: w.value).tangent.scalar]
        }
    }

    /// Records the compiler-to-tape time ratio of a gradient.
    static func noteCompilerRatio(_ bench: inout Bench, _ what: String, compiler: Double?, tape: Double?) {
        guard let compiler, let tape else { return }
        bench.notes.append(String(format: "%@: compiler-gradient / tape gradient = %.2f", what, compiler / tape))
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
