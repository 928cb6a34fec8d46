import Foundation

// The machinery shared by the scheduled fully first-order methods of Kwon et al. (F2SA's outer loop,
// F³SA, and the prox-smoothed penalty methods for nonconvex lower levels): the polynomial step-size
// and multiplier schedules, the momentum-assisted (STORM) gradient estimate, and the penalty loop
// over carried iterates (x, y, z).

/// How noisy the gradient oracles are, which selects the schedule exponents of Kwon et al.'s theorems.
public enum GradientNoise: Sendable {
    /// Exact gradients of F and f.
    case exact
    /// Stochastic gradients of F, exact gradients of f.
    case upper
    /// Stochastic gradients of both F and f.
    case upperAndLower
}

/// The step-size and multiplier schedules of F2SA and F³SA (Kwon et al. 2023 (F2SA), as the complexity
/// theorems are summarised in Kwon et al. 2025 (talk), Part II, "Complexity of F²SA / F³SA"):
///
///     α_k = α₀ s_k^(−a),   γ_k = γ₀ s_k^(−c),   λ_k = λ₀ s_k^(a−c),   s_k = (k + k₀)/k₀,
///
/// with `0 ≤ c ≤ a ≤ 1`: γ_k is the step on f for z, α_k the step on `F + λ_k f` for y, `ξ α_k` the step
/// for x (ξ the step-size ratio), and `λ_{k+1} − λ_k = δ_k` the increment that keeps `λ_k ∝ k^(a−c)`.
/// Since `α_k λ_k = α₀ λ₀ s_k^(−c)`, the default `α₀ = γ₀/(1 + λ₀)` keeps the y-step on the curvature
/// of f no larger than the z-step for every k (the y-loop stays stable as λ grows). The normalisation by
/// k₀ makes `α₀, γ₀, λ₀` the values at k = 0.
public struct PenaltySchedule: Sendable {
    /// λ₀ > 0, the multiplier at k = 0.
    public var multiplier: Double
    /// γ₀ > 0, the z-step (gradient step on f) at k = 0.
    public var lowerStep: Double
    /// α₀ > 0, the y-step on `F + λ f` at k = 0, or `nil` for `γ₀/(1 + λ₀)`.
    public var penaltyStep: Double?
    /// The exponent a of α_k.
    public var stepExponent: Double
    /// The exponent c of γ_k (`0 ≤ c ≤ a`).
    public var lowerStepExponent: Double
    /// k₀ ≥ 1, the offset of the polynomial schedules.
    public var offset: Double
    /// ξ > 0, the ratio of the x-step to the y-step.
    public var ratio: Double

    /// A schedule with explicit exponents (see the type's documentation).
    public init(
        multiplier: Double, lowerStep: Double, penaltyStep: Double? = nil, stepExponent: Double, lowerStepExponent: Double,
        offset: Double = 10, ratio: Double = 1
    ) {
        self.multiplier = multiplier
        self.lowerStep = lowerStep
        self.penaltyStep = penaltyStep
        self.stepExponent = stepExponent
        self.lowerStepExponent = lowerStepExponent
        self.offset = offset
        self.ratio = ratio
    }

    /// F2SA's exponents (a, c): (1/3, 0) exact, (3/5, 2/5) noisy F, (5/7, 4/7) noisy F and f — the choices
    /// that give `E‖∇F(x_R)‖ = Õ(K^(−1/3))`, `Õ(K^(−1/5))`, `Õ(K^(−1/7))`.
    public static func f2saExponents(_ noise: GradientNoise) -> (a: Double, c: Double) {
        switch noise {
        case .exact: (1.0 / 3, 0)
        case .upper: (3.0 / 5, 2.0 / 5)
        case .upperAndLower: (5.0 / 7, 4.0 / 7)
        }
    }

    /// F³SA's exponents (a, c): (1/3, 0) exact, (1/2, 1/4) noisy F, (3/5, 2/5) noisy F and f — rates
    /// `Õ(K^(−1/3))`, `Õ(K^(−1/4))`, `Õ(K^(−1/5))`.
    public static func f3saExponents(_ noise: GradientNoise) -> (a: Double, c: Double) {
        switch noise {
        case .exact: (1.0 / 3, 0)
        case .upper: (1.0 / 2, 1.0 / 4)
        case .upperAndLower: (3.0 / 5, 2.0 / 5)
        }
    }

    /// `s_k = (k + k₀)/k₀`.
    private func scale(_ k: Int) -> Double { (Double(k) + offset) / offset }

    /// λ_k = λ₀ s_k^(a−c).
    public func multiplier(at k: Int) -> Double { multiplier * pow(scale(k), stepExponent - lowerStepExponent) }
    /// γ_k = γ₀ s_k^(−c).
    public func lowerStep(at k: Int) -> Double { lowerStep * pow(scale(k), -lowerStepExponent) }
    /// α_k = α₀ s_k^(−a).
    public func penaltyStep(at k: Int) -> Double { (penaltyStep ?? lowerStep / (1 + multiplier)) * pow(scale(k), -stepExponent) }

    /// Checks every constant and `0 ≤ c ≤ a ≤ 1`.
    ///
    /// - Throws: `BilevelError.invalidArgument` naming the constant and its value.
    func validate(method: String) throws {
        try requirePositive("\(method).schedule.multiplier (λ₀)", multiplier)
        try requirePositive("\(method).schedule.lowerStep (γ₀)", lowerStep)
        if let penaltyStep { try requirePositive("\(method).schedule.penaltyStep (α₀)", penaltyStep) }
        try requirePositive("\(method).schedule.ratio (ξ)", ratio)
        guard offset >= 1 else { throw BilevelError.invalidArgument(name: "\(method).schedule.offset (k₀)", reason: "must be ≥ 1, got \(offset)") }
        guard 0 <= lowerStepExponent, lowerStepExponent <= stepExponent, stepExponent <= 1 else {
            throw BilevelError.invalidArgument(
                name: "\(method).schedule exponents",
                reason: "need 0 ≤ c ≤ a ≤ 1, got a = \(stepExponent), c = \(lowerStepExponent)")
        }
    }
}

/// What a scheduled penalty run returns: the final iterates and, per outer step k, the point x_k, the
/// multiplier λ_k and the hypergradient estimate `ĝ_k` the x-step used.
public struct PenaltyTrajectory {
    /// The final upper variable x_K.
    public var x: Tensor
    /// The final penalty iterate y_K (≈ argmin_y F + λ f).
    public var y: Tensor
    /// The final lower iterate z_K (≈ argmin_y f).
    public var z: Tensor
    /// x_k at every outer step.
    public var points: [Tensor] = []
    /// λ_k at every outer step (1/σ_k for the prox-smoothed methods).
    public var multipliers: [Double] = []
    /// The estimate `ĝ_k ≈ ∇F(x_k)` at every outer step.
    public var estimates: [Tensor] = []
    /// All derivative queries of the run.
    public var counts = DerivativeCounts()
    /// Wall-clock seconds of the run.
    public var seconds = 0.0
}

/// A momentum-assisted gradient estimate (STORM; Khanduri et al. 2021, as used by F³SA):
///
///     h_k = ∇(p_k; φ_k) + (1 − η_k) (h_{k−1} − ∇(p_{k−1}; φ_k)),
///
/// the same sample φ_k at the new and the previous point. Without a weight (or η_k = 1) it is the plain
/// estimate `∇(p_k; φ_k)` and costs one gradient; otherwise two.
struct MomentumEstimate {
    private var last: (point: [Tensor], value: Tensor)?

    /// `h_k` at `point`, with `gradient` evaluating `∇(·; φ_k)` on the caller's fixed sample.
    mutating func next(at point: [Tensor], weight: Double?, _ gradient: ([Tensor]) throws -> Tensor) rethrows -> Tensor {
        var value = try gradient(point)
        if let weight, weight < 1, let last {
            value = value + (1 - weight) * (last.value - (try gradient(last.point)))
        }
        last = (point.map(\.detached), value.detached)
        return value
    }
}

/// The five gradient estimates of the penalty methods, each a `MomentumEstimate` on a sample drawn per
/// query: inside the loop `∇ᵧf(x, z)`, `∇ᵧF(x, y)`, `∇ᵧf(x, y)`; for the x-step `∇ₓF(x, y)` and the gap
/// `∇ₓf(x, y) − ∇ₓf(x, z)` on one shared sample (so its noise scales with ‖y − z‖).
final class PenaltyGradients {
    private let source: GradientSource
    private var lowerAtZ = MomentumEstimate(), upperAtY = MomentumEstimate(), lowerAtY = MomentumEstimate()
    private var upperX = MomentumEstimate(), gapX = MomentumEstimate()

    init(_ source: GradientSource) { self.source = source }

    /// `(h_gz, h_fy, h_gy)`: the y-parts of ∇f at (x, z), ∇F and ∇f at (x, y).
    func inner(_ x: Tensor, y: Tensor, z: Tensor, weight: Double?) throws -> (Tensor, Tensor, Tensor) {
        let zSample = source.lowerIndices(), upperSample = source.upperIndices(), ySample = source.lowerIndices()
        let gz = try lowerAtZ.next(at: [x, z], weight: weight) { p in try source.lower(p[0], p[1], indices: zSample).y }
        let fy = try upperAtY.next(at: [x, y], weight: weight) { p in try source.upper(p[0], p[1], indices: upperSample).y }
        let gy = try lowerAtY.next(at: [x, y], weight: weight) { p in try source.lower(p[0], p[1], indices: ySample).y }
        return (gz, fy, gy)
    }

    /// `(h_fx, h_gap)`: ∇ₓF at (x, y) and `∇ₓf(x, y) − ∇ₓf(x, z)` on one sample.
    func upper(_ x: Tensor, y: Tensor, z: Tensor, weight: Double?) throws -> (Tensor, Tensor) {
        let upperSample = source.upperIndices(), gapSample = source.lowerIndices()
        let fx = try upperX.next(at: [x, y], weight: weight) { p in try source.upper(p[0], p[1], indices: upperSample).x }
        let gap = try gapX.next(at: [x, y, z], weight: weight) { p in
            try source.lower(p[0], p[1], indices: gapSample).x - source.lower(p[0], p[2], indices: gapSample).x
        }
        return (fx, gap)
    }
}

/// The penalty loop of F2SA (Algorithm 1 with inner loop) and F³SA on carried iterates: for k = 0…K−1,
/// T inner steps
///
///     z ← z − γ_k h_gz(x_k, z),   y ← y − α_k (h_fy(x_k, y) + λ_k h_gy(x_k, y)),
///
/// then `x_{k+1} = P(x_k − ξ α_k ĝ_k)` (P the optional projection onto the feasible upper set), `ĝ_k = h_fx(x_k, y) + λ_k (h_gx(x_k, y) − h_gx(x_k, z))` (one sample
/// shared by the difference), every h a `MomentumEstimate` with weight `momentum(k)` (plain gradients
/// when `momentum` is nil). y and z are never restarted.
///
/// - Throws: `BilevelError.invalidSteps` for K < 1 or T < 1, `.invalidArgument` for the schedule or the
///   batch size, `.unsupportedConstraints` for lower-level constraints, `.shapeMismatch` when `z0` is not shaped like `y0` or the projection changes x's shape,
///   `.nonFinite` naming the iterate and outer step.
func runPenaltyLoop(
    _ problem: BilevelProblem, schedule: PenaltySchedule, innerSteps: Int, momentum: ((Int) -> Double)?,
    batchSize: Int?, seed: UInt64, method: String, from x0: Tensor, y0: Tensor, z0: Tensor?, steps: Int,
    projection: ((Tensor) -> Tensor)?
) throws -> PenaltyTrajectory {
    guard steps >= 1 else { throw BilevelError.invalidSteps(name: "\(method) outer steps (K)", value: steps, requirement: "K ≥ 1") }
    guard innerSteps >= 1 else { throw BilevelError.invalidSteps(name: "\(method).innerSteps (T)", value: innerSteps, requirement: "T ≥ 1") }
    try schedule.validate(method: method)
    try problem.validate(x: x0, y0: y0, outerLoop: method)
    if let z0, z0.shape != y0.shape { throw BilevelError.shapeMismatch(name: "\(method) z0", expected: y0.shape, actual: z0.shape) }
    let start = DispatchTime.now().uptimeNanoseconds
    let oracle = BilevelOracle(problem)
    let source = try GradientSource(oracle, batchSize: batchSize, seed: seed, method: method)
    var x = x0.detached, y = y0.detached, z = (z0 ?? y0).detached
    var trajectory = PenaltyTrajectory(x: x, y: y, z: z)
    let gradients = PenaltyGradients(source)
    for k in 0..<steps {
        let gamma = schedule.lowerStep(at: k), alpha = schedule.penaltyStep(at: k), lambda = schedule.multiplier(at: k)
        let weight = momentum?(k)
        for _ in 0..<innerSteps {
            let (gz, fy, gy) = try gradients.inner(x, y: y, z: z, weight: weight)
            z = (z - gamma * gz).detached
            y = (y - alpha * (fy + lambda * gy)).detached
            if z.hasNonFinite { throw BilevelError.nonFinite(quantity: "\(method)'s lower iterate z", step: k + 1) }
            if y.hasNonFinite { throw BilevelError.nonFinite(quantity: "\(method)'s penalty iterate y", step: k + 1) }
        }
        let (fx, gap) = try gradients.upper(x, y: y, z: z, weight: weight)
        let estimate = (fx + lambda * gap).detached
        trajectory.points.append(x)
        trajectory.multipliers.append(lambda)
        trajectory.estimates.append(estimate)
        x = try projected(x - schedule.ratio * alpha * estimate, by: projection, like: x, method: method).detached
        if x.hasNonFinite { throw BilevelError.nonFinite(quantity: "\(method)'s upper iterate x", step: k + 1) }
    }
    trajectory.x = x
    trajectory.y = y
    trajectory.z = z
    trajectory.counts = oracle.counts
    trajectory.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return trajectory
}

/// `projection(x)` (or x without one), checked to keep the shape of `reference`.
///
/// - Throws: `BilevelError.shapeMismatch` naming the method's projection.
func projected(_ x: Tensor, by projection: ((Tensor) -> Tensor)?, like reference: Tensor, method: String) throws -> Tensor {
    guard let projection else { return x }
    let result = projection(x)
    guard result.shape == reference.shape else {
        throw BilevelError.shapeMismatch(name: "\(method) projection(x)", expected: reference.shape, actual: result.shape)
    }
    return result
}
