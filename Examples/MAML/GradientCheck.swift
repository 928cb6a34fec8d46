import Bilevel
import MetaLearningSupport

/// The `--check` self-test: the MAML meta-gradient (`ReverseUnroll` on the adaptation problem, start `y0 = θ`) against
/// central finite differences of the meta-objective, on a network small enough to difference every
/// parameter.
enum GradientCheck {
    /// The meta-objective `θ ↦ L_q(θ_T)` with `θ_{t+1} = θ_t − α ∇L_s(θ_t)`, `θ_0 = θ`, written directly
    /// with the engine's `gradient` (independently of the `Bilevel` layer), evaluated on constants.
    static func metaObjective(_ theta: Parameters, task: SineTask, network: MLP, step: Double, steps: Int) -> Double {
        var adapted = theta
        for _ in 0..<steps {
            let g = gradient(at: adapted) { network.loss($0, task.supportInputs, task.supportTargets) }
            adapted = adapted.zipTensors(g) { w, dw in w - step * dw }
        }
        return network.loss(adapted, task.queryInputs, task.queryTargets).scalar
    }

    /// Runs the check, prints the relative errors of MAML (and, for contrast, of FO-MAML) against finite
    /// differences, and returns whether MAML's error is within `MetaGradientCheck.tolerance`.
    ///
    /// - Throws: `BilevelError` if a hypergradient method fails.
    static func run(seed: UInt64) throws -> Bool {
        let network = MLP(widths: [1, 6, 6, 1])
        var generator = SeededGenerator(seed: seed)
        let theta = network.initialParameters(using: &generator)
        var sampler = SineTaskSampler(seed: seed &+ 1, supportSize: 10, querySize: 10)
        let task = sampler.next()
        let step = 0.02, steps = 2, h = 1e-5
        let problem = adaptationProblem(task, network: network, dynamics: .gradientDescent(step: step), innerSteps: steps)
        let maml = try ReverseUnroll().hypergradient(of: problem, at: theta, from: theta).hypergradient.flattened
        let firstOrder = try FirstOrderUnroll().hypergradient(of: problem, at: theta, from: theta).hypergradient.flattened
        let reference = MetaGradientCheck.centralDifferences(at: theta.flattened, step: h) { flat in
            metaObjective(theta.unflattening(flat), task: task, network: network, step: step, steps: steps)
        }
        return MetaGradientCheck.report(
            title: "MAML meta-gradient check: network \(network.widths) (\(network.parameterCount) parameters), "
                + "\(steps) inner steps of size \(step), central differences with h = \(h)",
            reference: reference, maml: maml, firstOrder: firstOrder)
    }
}
