import Bilevel
import MetaLearningSupport

/// The hyper-parameters shared by every meta-learner, so the comparison is like for like.
struct FewShotConfig {
    /// The network meta-trained.
    var network = ConvNet(size: 10, channels: (8, 8), ways: 5)
    /// Query examples per class in every task.
    var queries = 3
    /// Inner gradient step α (MAML, FO-MAML, iMAML).
    var innerStep = 0.4
    /// Inner sign step (Sign-MAML): every parameter moves by exactly this per step.
    var signStep = 0.03
    /// Inner steps of the unrolled learners, in meta-training and at meta-test time.
    var innerSteps = 2
    /// iMAML: the proximal weight λ of `‖φ − θ‖²/2`, its inner gradient step and step count (the inner
    /// problem is solved further than MAML's two steps, so the step is smaller to stay stable), and its CG
    /// budget.
    var proximalWeight = 2.0
    var implicitInnerStep = 0.08
    var implicitInnerSteps = 8
    var conjugateGradientIterations = 5
    /// Tasks per meta-gradient.
    var metaBatch = 4
    /// Adam step on θ.
    var metaStep = 0.005
    /// Meta-iterations (Adam updates) per learner and setting.
    var iterations = 100
}

/// The four meta-learners of the table, each an inner dynamics paired with a `Bilevel` hypergradient
/// method, as in the MAML-BLO comparison of Zhang et al. 2024 (Signal Processing Magazine), Table 4.
enum MetaLearner: CaseIterable {
    /// First-order MAML: the inner gradients held constant (`FirstOrderUnroll`).
    case firstOrder
    /// Sign-MAML: sign-gradient inner steps, whose exact unrolled derivative is first order (`SignUnroll`).
    case sign
    /// MAML: reverse-mode differentiation through the inner gradient steps (`ReverseUnroll`).
    case maml
    /// iMAML: implicit differentiation of the proximal inner problem, `v` by conjugate gradient
    /// (`Implicit` with `ConjugateGradient`).
    case implicit

    /// The name printed in the table.
    var name: String {
        switch self {
        case .firstOrder: return "FO-MAML"
        case .sign: return "Sign-MAML"
        case .maml: return "MAML"
        case .implicit: return "iMAML"
        }
    }

    /// The hypergradient method, as printed in the table.
    var solver: String {
        switch self {
        case .firstOrder: return "FirstOrderUnroll"
        case .sign: return "SignUnroll"
        case .maml: return "ReverseUnroll"
        case .implicit: return "Implicit + CG"
        }
    }

    /// The `Bilevel` method computing this learner's meta-gradient.
    func method(_ config: FewShotConfig) -> any HypergradientMethod {
        switch self {
        case .firstOrder: return FirstOrderUnroll()
        case .sign: return SignUnroll()
        case .maml: return ReverseUnroll()
        case .implicit: return Implicit(solver: ConjugateGradient(maxIterations: config.conjugateGradientIterations, tolerance: 1e-6))
        }
    }

    /// The adaptation problem of one task and its inner starting point, for meta-parameters θ.
    ///
    /// Unrolled learners use the displacement form `y = Δ`, `Δ₀ = 0`, `f = L_s(θ + Δ)`, `F = L_q(θ + Δ)`
    /// (gradient or sign-gradient steps on Δ are exactly the MAML iterates from θ, and the start is a
    /// true constant). iMAML uses the proximal problem
    ///
    ///     f(θ, φ) = L_s(φ) + (λ/2)‖φ − θ‖²,   F(θ, φ) = L_q(φ),   φ₀ = θ,
    ///
    /// whose implicit hypergradient is `−∇²_{θφ}f · (∇²_{φφ}f)⁻¹ ∇_φ L_q = λ (∇²L_s + λI)⁻¹ ∇L_q`.
    func problem(_ task: GlyphTask, _ config: FewShotConfig, steps: Int? = nil) -> BilevelProblem {
        let network = config.network
        switch self {
        case .implicit:
            let lambda = config.proximalWeight
            return BilevelProblem(
                upper: { _, phi in network.loss(phi, task.queryImages, task.queryLabels) },
                lower: { theta, phi in
                    network.loss(phi, task.supportImages, task.supportLabels) + (0.5 * lambda) * (phi - theta).squaredNorm()
                },
                dynamics: .gradientDescent(step: config.implicitInnerStep), innerSteps: steps ?? config.implicitInnerSteps)
        default:
            return BilevelProblem(
                upper: { theta, delta in network.loss(theta + delta, task.queryImages, task.queryLabels) },
                lower: { theta, delta in network.loss(theta + delta, task.supportImages, task.supportLabels) },
                dynamics: self == .sign ? .signGradientDescent(step: config.signStep) : .gradientDescent(step: config.innerStep),
                innerSteps: steps ?? config.innerSteps)
        }
    }

    /// The inner starting point for θ: `Δ₀ = 0` for the displacement form, `φ₀ = θ` for iMAML.
    func start(_ theta: Tensor) -> Tensor { self == .implicit ? theta.detached : Tensor(zeros: theta.shape) }

    /// The adapted parameters θ' for θ on `task` after the learner's inner steps.
    ///
    /// - Throws: `BilevelError.nonFinite` when the adaptation diverges.
    func adapt(_ theta: Tensor, to task: GlyphTask, _ config: FewShotConfig) throws -> Tensor {
        let problem = problem(task, config)
        let y = try BilevelOracle(problem).unroll(from: start(theta), theta, steps: problem.innerSteps, like: start(theta)).final
        return self == .implicit ? y : theta + y
    }
}

/// Meta-trains `learner` from `theta0` on the task stream of `sampler` (a copy, so every learner sees the
/// same tasks) with the shared loop (`MetaLearningSupport.metaTrain`): every iteration averages the
/// meta-gradients of `metaBatch` tasks and takes one Adam step.
///
/// - Returns: the learned initialisation and the wall-clock seconds spent.
/// - Throws: `BilevelError` when an inner loop or a meta-gradient turns non-finite.
func metaTrain(
    _ learner: MetaLearner, from theta0: Tensor, sampler: GlyphTaskSampler, config: FewShotConfig
) throws -> (theta: Tensor, seconds: Double) {
    var sampler = sampler
    let method = learner.method(config)
    return try MetaLearningSupport.metaTrain(
        learnerName: learner.name, from: theta0, iterations: config.iterations,
        metaBatch: config.metaBatch, metaStep: config.metaStep, nextTasks: { sampler.next($0) }
    ) { task, theta in
        try method.hypergradient(of: learner.problem(task, config), at: theta, from: learner.start(theta)).hypergradient
    }
}

/// The mean query accuracy over `tasks` after adapting θ to each support set with `learner`'s inner
/// loop, and the half-width of its 95% confidence interval over tasks, `1.96 · s / √n`.
///
/// - Throws: `BilevelError.nonFinite` when an adaptation diverges.
func metaTestAccuracy(
    of theta: Tensor, on tasks: [GlyphTask], learner: MetaLearner, config: FewShotConfig
) throws -> (mean: Double, halfWidth: Double) {
    let scores = try tasks.map { task in
        config.network.accuracy(try learner.adapt(theta, to: task, config), task.queryImages, task.queryLabels)
    }
    let (mean, standardError) = meanAndStandardError(scores)
    return (mean, 1.96 * standardError)
}
