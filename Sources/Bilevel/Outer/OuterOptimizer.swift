import Foundation

/// The update rule of the outer (upper-level) loop, applied to the hypergradient `g_k`.
public enum OuterOptimizer: Sendable {
    /// `x_{k+1} = x_k − α g_k`.
    case gradientDescent(step: Double)
    /// Adam (Kingma & Ba 2015): `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`,
    /// `x_{k+1} = x_k − α m̂ / (√v̂ + ε)` with bias corrections `m̂ = m/(1−β₁ᵏ)`, `v̂ = v/(1−β₂ᵏ)`.
    case adam(step: Double, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8)

    /// Checks the parameters: `α > 0`, `0 ≤ β₁, β₂ < 1`, `ε > 0`.
    ///
    /// - Throws: `BilevelError.invalidArgument` naming the parameter.
    func validate() throws {
        switch self {
        case let .gradientDescent(step):
            try requirePositive("gradientDescent step", step)
        case let .adam(step, beta1, beta2, epsilon):
            try requirePositive("adam step", step)
            guard (0..<1).contains(beta1), (0..<1).contains(beta2) else {
                throw BilevelError.invalidArgument(name: "adam beta1/beta2", reason: "must lie in [0, 1), got \(beta1), \(beta2)")
            }
            guard epsilon > 0 else { throw BilevelError.invalidArgument(name: "adam epsilon", reason: "must be > 0, got \(epsilon)") }
        }
    }
}

/// The running state of an `OuterOptimizer` (Adam's moments and step count), for outer loops written by
/// hand (e.g. meta-learning, where every step sees a new batch of problems) as well as `minimize`.
public struct OuterOptimizerState: Sendable {
    /// The update rule.
    public let optimizer: OuterOptimizer
    private var firstMoment: Tensor?
    private var secondMoment: Tensor?
    private var count = 0

    /// A fresh state (zero moments) for `optimizer`.
    ///
    /// - Throws: `BilevelError.invalidArgument` naming a parameter out of range.
    public init(validating optimizer: OuterOptimizer) throws {
        try optimizer.validate()
        self.init(optimizer)
    }

    /// A fresh state for an already validated optimizer.
    init(_ optimizer: OuterOptimizer) { self.optimizer = optimizer }

    /// `x_{k+1}` from `x_k` and the hypergradient `g_k` (on constants).
    public mutating func update(_ x: Tensor, gradient g: Tensor) -> Tensor {
        switch optimizer {
        case let .gradientDescent(step):
            return x - step * g
        case let .adam(step, beta1, beta2, epsilon):
            count += 1
            let m = beta1 * (firstMoment ?? Tensor(zeros: g.shape)) + (1 - beta1) * g
            let v = beta2 * (secondMoment ?? Tensor(zeros: g.shape)) + (1 - beta2) * (g * g)
            firstMoment = m
            secondMoment = v
            let mHat = m / (1 - pow(beta1, Double(count))), vHat = v / (1 - pow(beta2, Double(count)))
            return x - step * mHat / (sqrt(vHat) + epsilon)
        }
    }
}
