// Pieces shared by the first-order methods (F2SA, BOME, PBGD, BDA) and the stochastic Neumann solver:
// the gradient step and step count they default to, and one source of (full or
// mini-batch) gradients that runs the lower-level descent `z_T` and the value-function gap
// `∇ₓf(x, y) − ∇ₓf(x, z)`.

extension BilevelProblem {
    /// The gradient step η a first-order method takes on f: `given`, else the step of the problem's
    /// `.gradientDescent` dynamics.
    ///
    /// - Throws: `BilevelError.invalidArgument` for η ≤ 0, or when no step is given and the dynamics are
    ///   not plain gradient descent.
    func firstOrderStep(_ given: Double?, method: String) throws -> Double {
        if let given {
            try requirePositive("\(method).innerStep", given)
            return given
        }
        guard case let .gradientDescent(eta) = dynamics else {
            throw BilevelError.invalidArgument(
                name: "\(method).innerStep",
                reason: "not given, and the problem's dynamics \(dynamics) are not .gradientDescent(step:); pass innerStep")
        }
        try requirePositive("\(method).innerStep (the problem's .gradientDescent step)", eta)
        return eta
    }

    /// `validate(x:y0:for:)` for an outer loop that is not itself a `HypergradientMethod` (scheduled F2SA,
    /// F³SA, the prox-smoothed penalty, MORBiT), named `loop`: the same checks, constraints refused.
    ///
    /// - Throws: what `validate(x:y0:for:)` throws, `.unsupportedConstraints` naming `loop`.
    func validate(x: Tensor, y0: Tensor, outerLoop loop: String) throws {
        try validate(x: x, y0: y0, for: OuterLoop(name: loop))
    }

    /// Checks that mini-batches of `batchSize` can be drawn from the lower objective's mini-batch form
    /// (`lowerBatch`, else `lowerSamples`).
    ///
    /// - Throws: `BilevelError.invalidArgument` when `batchSize < 1`, the problem has neither `lowerBatch`
    ///   nor `lowerSamples`, or `batchSize` exceeds the number of samples they draw from.
    func validateLowerBatch(_ batchSize: Int, method: String) throws {
        guard batchSize >= 1 else { throw BilevelError.invalidArgument(name: "\(method).batchSize", reason: "must be ≥ 1, got \(batchSize)") }
        guard lowerBatch != nil || lowerSamples != nil else {
            throw BilevelError.invalidArgument(
                name: "\(method).batchSize",
                reason: "is \(batchSize), but the problem has no lowerBatch closure (nor lowerSamples) to draw mini-batches from; set BilevelProblem.lowerBatch or lowerSamples, or use batchSize: nil")
        }
        guard batchSize <= lowerMiniBatchPopulation else {
            throw BilevelError.invalidArgument(name: "\(method).batchSize", reason: "\(batchSize) exceeds the lower sample count \(lowerMiniBatchPopulation)")
        }
    }

    /// The step count T a first-order method runs (`given`, else `innerSteps`), after checking it and
    /// `validate(x:y0:)`.
    ///
    /// - Throws: `BilevelError.invalidSteps` for T < 1, plus what `validate` throws.
    func firstOrderSteps(_ given: Int?, for method: some HypergradientMethod, x: Tensor, y0: Tensor) throws -> Int {
        let steps = given ?? innerSteps
        guard steps >= 1 else { throw BilevelError.invalidSteps(name: "\(method.name).innerSteps (T)", value: steps, requirement: "T ≥ 1") }
        var checked = self
        checked.innerSteps = steps
        try checked.validate(x: x, y0: y0, for: method)
        return steps
    }
}

/// Where a first-order method's gradients come from: the full objectives through the oracle, or — with
/// a batch size — the mini-batch loss of `lowerBatch` or `lowerSamples` (and of `upperBatch` or
/// `upperSamples` when the problem has one; else the full F; `BilevelOracle.lowerBatchGradients`) on `batchSize`
/// distinct indices drawn afresh for every query from a `SeededGenerator`, so a run is reproducible from
/// its seed. Every query is one counted oracle gradient.
final class GradientSource {
    let oracle: BilevelOracle
    private let batchSize: Int?
    private var generator: SeededGenerator

    /// A source for `oracle`; checks `batchSize` against the problem's mini-batch closures.
    ///
    /// - Throws: `BilevelError.invalidArgument` when `batchSize < 1`, the problem has no `lowerBatch`, or
    ///   `batchSize` exceeds `lowerSampleCount` (or `upperSampleCount` when `upperBatch` is set).
    init(_ oracle: BilevelOracle, batchSize: Int?, seed: UInt64, method: String) throws {
        let problem = oracle.problem
        if let batchSize {
            try problem.validateLowerBatch(batchSize, method: method)
            if let upperCount = problem.upperMiniBatchPopulation, batchSize > upperCount {
                throw BilevelError.invalidArgument(
                    name: "\(method).batchSize", reason: "\(batchSize) exceeds the upper sample count \(upperCount)")
            }
        }
        self.oracle = oracle
        self.batchSize = batchSize
        generator = SeededGenerator(seed: seed)
    }

    /// Fresh lower-level indices, or `nil` for the full objective.
    func lowerIndices() -> [Int]? { batchSize.map { generator.sample($0, from: oracle.problem.lowerMiniBatchPopulation) } }

    /// Fresh upper-level indices, or `nil` for the full objective (also when the problem has neither
    /// `upperBatch` nor `upperSamples`).
    func upperIndices() -> [Int]? {
        guard let batchSize, let upperCount = oracle.problem.upperMiniBatchPopulation else { return nil }
        return generator.sample(batchSize, from: upperCount)
    }

    /// `(∇ₓf, ∇ᵧf)` at `(x, y)` (on a fresh mini-batch in stochastic mode).
    func lower(_ x: Tensor, _ y: Tensor) throws -> (x: Tensor, y: Tensor) {
        try lower(x, y, indices: lowerIndices())
    }

    /// `(∇ₓf, ∇ᵧf)` at `(x, y)` on the given lower indices (`nil`: the full objective).
    func lower(_ x: Tensor, _ y: Tensor, indices: [Int]?) throws -> (x: Tensor, y: Tensor) {
        guard let indices else { return oracle.lowerGradients(x, y) }
        return try oracle.lowerBatchGradients(x, y, indices: indices)
    }

    /// `(∇ₓF, ∇ᵧF)` at `(x, y)` (on a fresh mini-batch when stochastic and the problem has `upperBatch`).
    func upper(_ x: Tensor, _ y: Tensor) throws -> (x: Tensor, y: Tensor) { try upper(x, y, indices: upperIndices()) }

    /// `(∇ₓF, ∇ᵧF)` at `(x, y)` on the given upper indices (`nil`: the full objective).
    func upper(_ x: Tensor, _ y: Tensor, indices: [Int]?) throws -> (x: Tensor, y: Tensor) {
        guard let indices else { return oracle.upperGradients(x, y) }
        return try oracle.upperBatchGradients(x, y, indices: indices)
    }

    /// The value-function gap's gradient `(∇ₓf(x, y) − ∇ₓf(x, z), ∇ᵧf(x, y))` — z is a constant — with
    /// both terms on the same mini-batch in stochastic mode (two gradients).
    func valueGap(_ x: Tensor, _ y: Tensor, _ z: Tensor) throws -> (x: Tensor, y: Tensor) {
        let indices = lowerIndices()
        let atY = try lower(x, y, indices: indices), atZ = try lower(x, z, indices: indices)
        return (atY.x - atZ.x, atY.y)
    }

    /// `z_T`: T gradient steps `z ← z − η ∇ᵧf(x, z)` from `y0` (T gradients), each projected onto the
    /// feasible set when `projection` is given.
    func lowerDescent(_ x: Tensor, from y0: Tensor, steps: Int, step eta: Double, onto projection: FeasibleProjection? = nil) throws -> Tensor {
        try descend(from: y0, steps: steps, step: eta, quantity: "the lower-level iterate z", onto: projection) { z in try lower(x, z).y }
    }
}

/// `steps` iterations `y ← y − step · direction(y)` from `y0`, on constants; with `projection`, each
/// iterate is projected onto the feasible set (`y ← Π(y − step · direction(y))`).
///
/// - Throws: `BilevelError.nonFinite` naming `quantity` and the first step that produced NaN/Inf, plus
///   what `direction` and the projection throw.
func descend(
    from y0: Tensor, steps: Int, step: Double, quantity: String, onto projection: FeasibleProjection? = nil,
    _ direction: (Tensor) throws -> Tensor
) throws -> Tensor {
    var y = y0.detached
    for t in 0..<steps {
        y = (y - step * (try direction(y))).detached
        try requireFinite(y, quantity, step: t + 1)
        if let projection { y = try projection.project(y) }
    }
    return y
}

/// An outer loop's name for the shared validation; it honours no constraints and is not a hypergradient
/// method (asking it for one throws).
private struct OuterLoop: HypergradientMethod {
    let name: String

    func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        throw BilevelError.invalidArgument(name: name, reason: "is an outer loop; call its minimize, not hypergradient")
    }
}
