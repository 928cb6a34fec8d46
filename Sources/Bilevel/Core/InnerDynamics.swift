/// The inner dynamics `s_t = Ψ(s_{t−1}, x)` that approximates `argmin_y f(x, y)`.
///
/// Ψ acts on an inner *state* `s`: the iterate `y` itself, or for heavy-ball momentum `y` and the
/// previous iterate flattened and joined (`[vec y, vec y_prev]`). Ψ is written with engine ops, so the
/// unrolled methods can differentiate it: `A_t = ∂Ψ/∂s` and `B_t = ∂Ψ/∂x` are applied through JVPs and
/// VJPs of `step`, never formed.
public enum InnerDynamics {
    /// Gradient descent `y_t = y_{t−1} − η ∇ᵧf(x, y_{t−1})`.
    case gradientDescent(step: Double)
    /// Heavy-ball momentum `y_t = y_{t−1} − η ∇ᵧf(x, y_{t−1}) + β (y_{t−1} − y_{t−2})`, `y_{−1} = y_0`.
    case momentum(step: Double, beta: Double)
    /// Sign gradient descent `y_t = y_{t−1} − η sign(∇ᵧf(x, y_{t−1}))` (Zhang et al. 2024, the signGD rule before eq. 13). `sign` has zero
    /// derivative, so `A_t = I` and `B_t = 0`.
    case signGradientDescent(step: Double)
    /// Any map `Ψ(y, x) -> y` written with engine ops.
    case custom((Tensor, Tensor) -> Tensor)

    /// The initial state for the iterate `y0`.
    public func initialState(_ y0: Tensor) -> Tensor {
        switch self {
        case .momentum:
            let flat = y0.reshaped(to: [y0.count])
            return concatenate([flat, flat])
        default:
            return y0
        }
    }

    /// The iterate `y` held in a state (of the shape of `like`).
    public func iterate(_ state: Tensor, like y0: Tensor) -> Tensor {
        switch self {
        case .momentum: return state.slice(alongAxis: 0, 0..<y0.count).reshaped(to: y0.shape)
        default: return state
        }
    }

    /// One step `Ψ(s, x)` for the lower objective `f(x, y)`; differentiable in `s` and `x` to any order.
    public func step(_ state: Tensor, _ x: Tensor, lower f: (Tensor, Tensor) -> Tensor, like y0: Tensor) -> Tensor {
        switch self {
        case let .gradientDescent(eta):
            return state - eta * gradient(at: state) { y in f(x, y) }
        case let .signGradientDescent(eta):
            return state - eta * sign(gradient(at: state) { y in f(x, y) })
        case let .momentum(eta, beta):
            let n = y0.count
            let y = state.slice(alongAxis: 0, 0..<n), previous = state.slice(alongAxis: 0, n..<(2 * n))
            let g = gradient(at: y) { y in f(x, y.reshaped(to: y0.shape)) }
            return concatenate([y - eta * g + beta * (y - previous), y])
        case let .custom(psi):
            return psi(state, x)
        }
    }

    /// Checks the dynamics' parameters: a finite positive step η, and momentum `β ∈ [0, 1)` (heavy ball
    /// is stable only there; a negative or NaN step would ascend f).
    ///
    /// - Throws: `BilevelError.invalidArgument` naming the parameter and its value.
    public func validate() throws {
        switch self {
        case let .gradientDescent(step), let .signGradientDescent(step):
            try requirePositive("the inner dynamics' step η", step)
        case let .momentum(step, beta):
            try requirePositive("the inner dynamics' step η", step)
            guard beta >= 0 && beta < 1 else {
                throw BilevelError.invalidArgument(name: "the inner dynamics' momentum β", reason: "must lie in [0, 1), got \(beta)")
            }
        case .custom:
            break
        }
    }
}
