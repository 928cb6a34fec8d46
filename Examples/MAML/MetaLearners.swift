import Bilevel
import MetaLearningSupport

/// The hyper-parameters shared by every meta-learner, so the comparison is like for like.
struct MetaConfig {
    /// The network meta-trained.
    var network = MLP(widths: [1, 40, 40, 1])
    /// Support (K) and query points per training task.
    var shots = 10
    /// Inner step α of the gradient-descent adaptation (MAML, FO-MAML and the baselines).
    var innerStep = 0.01
    /// Inner step of the sign-gradient adaptation (Sign-MAML): every parameter moves by exactly this.
    var signStep = 0.01
    /// Inner adaptation steps, in meta-training and at meta-test time.
    var innerSteps = 1
    /// Tasks per meta-gradient.
    var metaBatch = 5
    /// Adam step size on the meta-parameters.
    var metaStep = 0.003
    /// Meta-iterations (Adam updates).
    var iterations = 5000
}

/// The three meta-learners compared, each a pairing of inner dynamics with a hypergradient method of
/// the `Bilevel` library.
enum MetaLearner: CaseIterable {
    /// Second-order MAML: reverse-mode differentiation through the inner gradient steps (`ReverseUnroll`).
    case maml
    /// First-order MAML: the inner gradients treated as constants (`FirstOrderUnroll`).
    case firstOrder
    /// Sign-MAML: sign-gradient inner steps, whose exact unrolled derivative is first order (`SignUnroll`).
    case sign

    /// The name printed in the table.
    var name: String {
        switch self {
        case .maml: return "MAML"
        case .firstOrder: return "FO-MAML"
        case .sign: return "Sign-MAML"
        }
    }

    /// The kind of inner update, for the table: `"gradient"` or `"sign"`.
    var adaptation: String { self == .sign ? "sign" : "gradient" }

    /// The hypergradient method that computes this learner's meta-gradient.
    var method: any HypergradientMethod {
        switch self {
        case .maml: return ReverseUnroll()
        case .firstOrder: return FirstOrderUnroll()
        case .sign: return SignUnroll()
        }
    }

    /// The inner adaptation this learner is trained with (and adapts with at meta-test time).
    func dynamics(_ config: MetaConfig) -> InnerDynamics {
        switch self {
        case .maml, .firstOrder: return .gradientDescent(step: config.innerStep)
        case .sign: return .signGradientDescent(step: config.signStep)
        }
    }
}

/// The adaptation to one task as a bilevel problem over the network's layers, in MAML's own form
///
///     x = θ (meta-parameters),  y = θ' (adapted parameters),  y0 = θ,
///     lower f(θ, θ') = L_support(θ'),   upper F(θ, θ') = L_query(θ'),
///
/// so gradient descent on θ' gives exactly the MAML iterates `θ_{t+1} = θ_t − α ∇L_s(θ_t)` from `θ_0 = θ`.
/// θ and θ' are `[DenseLayer]` bundles; the methods run on the packed problem (`flat(like:_:)`).
/// The start depends on θ (`initialization: { $0 }`): the unrolled methods differentiate it (the t = 0 term
/// `(∂y0/∂θ)ᵀ λ₀ = λ₀`), and it is the only path from θ to the result, since f and F read θ' alone.
func adaptationProblem(
    _ task: SineTask, network: MLP, dynamics: InnerDynamics, innerSteps: Int
) -> StructuredBilevelProblem<Parameters, Parameters> {
    StructuredBilevelProblem(
        upper: { _, adapted in network.loss(adapted, task.queryInputs, task.queryTargets) },
        lower: { _, adapted in network.loss(adapted, task.supportInputs, task.supportTargets) },
        dynamics: dynamics, innerSteps: innerSteps, initialization: { theta in theta })
}

/// Meta-trains `learner` from `theta0` on the task stream fixed by `taskSeed` with the shared loop
/// (`MetaLearningSupport.metaTrain`): every iteration draws `metaBatch` tasks, averages their
/// meta-gradients and takes one Adam step on the packed parameters.
///
/// - Returns: the learned initialisation and the wall-clock seconds spent.
/// - Throws: `BilevelError` when an inner loop or meta-gradient turns non-finite.
func metaTrain(
    _ learner: MetaLearner, from theta0: Parameters, config: MetaConfig, taskSeed: UInt64
) throws -> (theta: Parameters, seconds: Double) {
    var sampler = SineTaskSampler(seed: taskSeed, supportSize: config.shots, querySize: config.shots)
    let method = learner.method, dynamics = learner.dynamics(config)
    let (flat, seconds) = try MetaLearningSupport.metaTrain(
        learnerName: learner.name, from: theta0.flattened, iterations: config.iterations,
        metaBatch: config.metaBatch, metaStep: config.metaStep, nextTasks: { sampler.next($0) }
    ) { task, flat in
        let theta = theta0.unflattening(flat)
        let problem = adaptationProblem(task, network: config.network, dynamics: dynamics, innerSteps: config.innerSteps)
        return try method.hypergradient(of: problem, at: theta, from: theta).hypergradient.flattened
    }
    return (theta0.unflattening(flat), seconds)
}

/// The mean query MSE over `tasks` after adapting `theta` to each task's support set with `steps`
/// steps of `dynamics`, and its standard error over tasks.
///
/// - Throws: `BilevelError.nonFinite` when an adaptation diverges.
func metaTestLoss(
    of theta: Parameters, on tasks: [SineTask], network: MLP, dynamics: InnerDynamics, steps: Int
) throws -> (mean: Double, standardError: Double) {
    let losses = try tasks.map { task -> Double in
        let problem = adaptationProblem(task, network: network, dynamics: dynamics, innerSteps: steps)
        let oracle = BilevelOracle(problem.flat(like: theta, theta)), flat = theta.flattened
        let adapted = try oracle.unroll(from: flat, flat, steps: steps, like: flat).final
        return oracle.upperValue(flat, adapted).scalar
    }
    return meanAndStandardError(losses)
}
