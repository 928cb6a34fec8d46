import Bilevel
import MetaLearningSupport

/// The `--check` self-test: the MAML meta-gradient of one task batch (`ReverseUnroll` on the
/// displacement problem, averaged over the batch) against central finite differences of the
/// meta-objective in every parameter of a narrower copy of the network.
enum GradientCheck {
    /// The batch meta-objective `θ ↦ (1/B) Σ_tasks L_q(θ_T)` with `θ_{t+1} = θ_t − α ∇L_s(θ_t)`,
    /// `θ_0 = θ`, written directly with the engine's `gradient` (independently of the `Bilevel` layer).
    static func metaObjective(_ theta: Tensor, tasks: [GlyphTask], config: FewShotConfig) -> Double {
        let network = config.network
        let losses = tasks.map { task -> Double in
            var adapted = theta
            for _ in 0..<config.innerSteps {
                adapted = adapted - config.innerStep * gradient(at: adapted) { network.loss($0, task.supportImages, task.supportLabels) }
            }
            return network.loss(adapted, task.queryImages, task.queryLabels).scalar
        }
        return losses.reduce(0, +) / Double(tasks.count)
    }

    /// Runs the check, prints the relative errors of MAML (and, for contrast, of FO-MAML) and returns
    /// whether MAML's error is within `MetaGradientCheck.tolerance`.
    ///
    /// - Throws: `BilevelError` if a hypergradient method fails.
    static func run(seed: UInt64) throws -> Bool {
        var config = FewShotConfig()
        config.network = ConvNet(size: 8, channels: (2, 3), ways: 5)
        var generator = SeededGenerator(seed: seed)
        let theta = config.network.initialParameters(using: &generator)
        var sampler = GlyphTaskSampler(seed: seed &+ 1, size: config.network.size, ways: 5, shots: 1, queries: 2)
        let tasks = sampler.next(2)
        let h = 1e-6
        func batchGradient(_ learner: MetaLearner) throws -> Tensor {
            try tasks.map { task in
                try learner.method(config).hypergradient(of: learner.problem(task, config), at: theta, from: learner.start(theta)).hypergradient
            }.reduce(Tensor(zeros: theta.shape), +) / Double(tasks.count)
        }
        let maml = try batchGradient(.maml), firstOrder = try batchGradient(.firstOrder)
        let reference = MetaGradientCheck.centralDifferences(at: theta, step: h) { metaObjective($0, tasks: tasks, config: config) }
        return MetaGradientCheck.report(
            title: "Few-shot MAML meta-gradient check: conv net \(config.network.size)×\(config.network.size), channels "
                + "\(config.network.channels), \(config.network.parameterCount) parameters; batch of \(tasks.count) 5-way 1-shot tasks; "
                + "\(config.innerSteps) inner steps of size \(config.innerStep); central differences with h = \(h)",
            reference: reference, maml: maml, firstOrder: firstOrder)
    }
}
