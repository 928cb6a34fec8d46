@_exported import AutoDiff

/// A bilevel problem `min_x F(x, y*(x))  s.t.  y*(x) = argmin_y f(x, y)`, with the lower level solved
/// approximately by `innerSteps` iterations of an inner dynamics `y_t = Ψ(y_{t−1}, x)`.
///
/// `upper` and `lower` are ordinary closures over tensors written with `AutoDiff` ops; every derivative a
/// method needs (gradients, Hessian-vector and mixed products, JVPs and VJPs of Ψ) is taken from them by
/// the engine, through a counted `BilevelOracle`.
///
/// Not `Sendable`, by decision: the closures may capture caller state (data sets, counters), and asking
/// every caller for `@Sendable` closures would reject ordinary code. Build one problem per task or thread
/// (as the engine owns one differentiation level per thread); the results and method configurations are
/// `Sendable` and cross threads freely. With `derivatives: .staged` the programs staged for a problem are
/// kept in a locked cache shared by its copies, so threads that do share a problem stage each program once.
public struct BilevelProblem {
    /// The upper (outer) objective `F(x, y)`; must return a scalar.
    public var upper: (Tensor, Tensor) -> Tensor { didSet { stagedProgramCache = StagedPrograms() } }
    /// The lower (inner) objective `f(x, y)`; must return a scalar.
    public var lower: (Tensor, Tensor) -> Tensor { didSet { stagedProgramCache = StagedPrograms() } }
    /// The inner dynamics Ψ that approximates `argmin_y f(x, y)`.
    public var dynamics: InnerDynamics { didSet { stagedProgramCache = StagedPrograms() } }
    /// Whether the oracle evaluates derivatives eagerly (default) or replays programs staged once per
    /// argument shapes (`.staged`: only for closures that read no mutable state — staging freezes what
    /// they capture; see `DerivativeMode`).
    public var derivatives: DerivativeMode { didSet { stagedProgramCache = StagedPrograms() } }
    /// The programs staged for this problem (shared by its copies; replaced when a closure, the dynamics
    /// or `derivatives` is set).
    var stagedProgramCache = StagedPrograms()
    /// The number T of inner steps the unrolled methods differentiate through, and the default inner
    /// iteration budget of the others.
    public var innerSteps: Int
    /// Optional mini-batch form of the lower objective: the mean lower loss over the given sample
    /// indices (`0..<lowerSampleCount`). Stochastic oracles and per-sample methods use it.
    public var lowerBatch: ((Tensor, Tensor, [Int]) -> Tensor)?
    /// The number of samples `lowerBatch` draws from.
    public var lowerSampleCount: Int
    /// Optional mini-batch form of the upper objective, as `lowerBatch`.
    public var upperBatch: ((Tensor, Tensor, [Int]) -> Tensor)?
    /// The number of samples `upperBatch` draws from.
    public var upperSampleCount: Int
    /// Optional per-sample form of the lower objective, `f = (1/N) Σₖ ℓ(x, y, sₖ)` (see `SampleLoss`).
    /// WoodFisher takes its per-sample gradients `gₖ = ∇ᵧℓ(x, y, sₖ)` from it (one batched program when
    /// staged). Without a `lowerBatch`, it is also the mini-batch loss `f_B = (1/|B|) Σ_{k∈B} ℓ(x, y, sₖ)`
    /// of the stochastic methods, over its N samples (`lowerSampleCount` is then not read); a `lowerBatch`
    /// the caller sets keeps defining the mini-batches.
    public var lowerSamples: SampleLoss? { didSet { stagedProgramCache = StagedPrograms() } }
    /// Optional per-sample form of the upper objective, `F = (1/N) Σₖ L(x, y, sₖ)`: the mini-batch upper
    /// loss when `upperBatch` is not set, as `lowerSamples`.
    public var upperSamples: SampleLoss? { didSet { stagedProgramCache = StagedPrograms() } }
    /// Linear constraints on a vector `y` (`E y = e`, `G y ≤ h`), or `nil` for an unconstrained lower
    /// level. Only methods whose `honoursConstraints` is true accept a constrained problem (`KKTImplicit`,
    /// `SmoothedImplicit`, `PBGD`); the others throw `BilevelError.unsupportedConstraints`.
    public var constraints: LinearConstraints?
    /// The starting point as a differentiable function of x, `y0 = initialization(x)` (initialization-based
    /// methods, Liu et al. 2021 (survey), §5.2; MAML's `y0 = θ` is `{ $0 }`), or `nil` for a start that does not depend on x.
    /// When set, the `y0` a method is given must equal `initialization(x)`, and the unrolled methods (FAD,
    /// RAD, TRAD, BDA, first-order) add its term `(∂y0/∂x)ᵀ λ₀` to the hypergradient.
    public var initialization: ((Tensor) -> Tensor)?
    /// The shape of the lower variable `y`, or `nil` to take it from `y0`. When declared, `validate`
    /// rejects a `y0` of any other shape, including one that would broadcast (`[1]` for `[3]`).
    public var lowerShape: [Int]?

    /// A problem from its two objectives and the inner dynamics.
    ///
    /// - Parameters:
    ///   - upper: `F(x, y)`, scalar.
    ///   - lower: `f(x, y)`, scalar.
    ///   - dynamics: Ψ, default gradient descent with step 0.1.
    ///   - innerSteps: T ≥ 1 (checked when a method runs, with `BilevelError.invalidSteps`).
    ///   - lowerBatch, upperBatch: the mean losses over given sample indices, with their sample counts.
    ///   - lowerSamples, upperSamples: the per-sample forms of the objectives (see `lowerSamples`).
    ///   - constraints: linear constraints on the lower variable (see `LinearConstraints`).
    ///   - initialization: the start `y0(x)` when it depends on x (see `initialization`).
    ///   - lowerShape: the shape of y, checked against every `y0` (see `lowerShape`).
    ///   - derivatives: `.eager` (default) or `.staged` (see `DerivativeMode`).
    public init(
        upper: @escaping (Tensor, Tensor) -> Tensor,
        lower: @escaping (Tensor, Tensor) -> Tensor,
        dynamics: InnerDynamics = .gradientDescent(step: 0.1),
        innerSteps: Int = 100,
        lowerBatch: ((Tensor, Tensor, [Int]) -> Tensor)? = nil, lowerSampleCount: Int = 0,
        upperBatch: ((Tensor, Tensor, [Int]) -> Tensor)? = nil, upperSampleCount: Int = 0,
        lowerSamples: SampleLoss? = nil, upperSamples: SampleLoss? = nil,
        constraints: LinearConstraints? = nil,
        initialization: ((Tensor) -> Tensor)? = nil,
        lowerShape: [Int]? = nil,
        derivatives: DerivativeMode = .eager
    ) {
        self.upper = upper
        self.lower = lower
        self.dynamics = dynamics
        self.innerSteps = innerSteps
        self.lowerBatch = lowerBatch
        self.lowerSampleCount = lowerSampleCount
        self.upperBatch = upperBatch
        self.upperSampleCount = upperSampleCount
        self.lowerSamples = lowerSamples
        self.upperSamples = upperSamples
        self.constraints = constraints
        self.initialization = initialization
        self.lowerShape = lowerShape
        self.derivatives = derivatives
    }

    /// The number of samples the lower mini-batches draw from: `lowerSampleCount` with a `lowerBatch`,
    /// else the N of `lowerSamples`, else 0 (no mini-batch form).
    var lowerMiniBatchPopulation: Int { lowerBatch != nil ? lowerSampleCount : lowerSamples?.count ?? 0 }

    /// The number of samples the upper mini-batches draw from (as `lowerMiniBatchPopulation`), or `nil`
    /// when the upper objective has no mini-batch form.
    var upperMiniBatchPopulation: Int? { upperBatch != nil ? upperSampleCount : upperSamples?.count }

    /// The derivatives staged so far for this problem (with `derivatives == .staged`): each program's
    /// size, the time it took to stage, or why it fell back to eager evaluation.
    public var stagedPrograms: [StagedProgramSummary] { stagedProgramCache.summaries }

    /// Checks everything a method receives, once, before it does any work (every method calls it):
    ///
    /// - `innerSteps ≥ 1`; `x` and `y0` non-empty and finite;
    /// - `y0` has the declared `lowerShape`, if any;
    /// - the dynamics' parameters: a finite positive step, momentum `β ∈ [0, 1)`;
    /// - `upper(x, y0)` and `lower(x, y0)` each return one element (evaluated once);
    /// - `constraints` only for a method that honours them.
    ///
    /// - Throws: `BilevelError.invalidSteps`, `.emptyTensor`, `.nonFinite`, `.shapeMismatch`,
    ///   `.invalidArgument` naming the dynamics parameter, `.unsupportedConstraints`.
    public func validate(x: Tensor, y0: Tensor, for method: some HypergradientMethod) throws {
        guard innerSteps >= 1 else { throw BilevelError.invalidSteps(name: "innerSteps (T)", value: innerSteps, requirement: "T ≥ 1") }
        guard x.count > 0 else { throw BilevelError.emptyTensor(name: "x") }
        guard y0.count > 0 else { throw BilevelError.emptyTensor(name: "y0") }
        try requireFinite(x, "x")
        try requireFinite(y0, "y0")
        if let lowerShape, y0.shape != lowerShape {
            throw BilevelError.shapeMismatch(name: "y0 (the declared lowerShape of the problem)", expected: lowerShape, actual: y0.shape)
        }
        try dynamics.validate()
        for (name, objective) in [("upper(x, y0)", upper), ("lower(x, y0)", lower)] {
            let value = objective(x.detached, y0.detached)
            guard value.count == 1 else { throw BilevelError.shapeMismatch(name: "\(name), an objective,", expected: [], actual: value.shape) }
        }
        try requireConstraintSupport(by: method)
    }

    /// Checks that `method` honours `constraints`, if the problem has any (part of `validate`; also used
    /// by entry points that skip the inner loop, such as `Implicit.hypergradient(of:at:innerSolution:)`).
    ///
    /// - Throws: `BilevelError.unsupportedConstraints` naming the method and those that can.
    public func requireConstraintSupport(by method: some HypergradientMethod) throws {
        if constraints != nil && !method.honoursConstraints {
            throw BilevelError.unsupportedConstraints(method: method.name, supported: constrainedMethodNames)
        }
    }
}
