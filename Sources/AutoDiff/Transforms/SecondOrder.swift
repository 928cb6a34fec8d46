// Hessian-vector products, mixed second-order products, Jacobians and Hessians, all by nesting the
// first-order transforms.

/// How a Hessian-vector product is computed.
public enum HVPMode: Sendable {
    /// The gradient-dot trick `∇ₓ⟨∇ₓf(x), v⟩`: reverse mode over reverse mode (Pearlmutter 1994).
    case reverseOverReverse
    /// `d/dε ∇f(x + εv)` at ε = 0: forward mode over reverse mode; no second tape.
    case forwardOverReverse
}

/// The Hessian-vector product `∇²f(x) · v` of a scalar function, without forming the Hessian.
///
/// - Parameter mode: `.reverseOverReverse` (default) takes `∇ₓ⟨∇ₓf, v⟩`; `.forwardOverReverse` pushes
///   the tangent `v` through the gradient computation.
/// - Precondition: `f` returns one element and `direction.shape == x.shape`.
public func hvp(
    at x: Tensor, direction v: Tensor, mode: HVPMode = .reverseOverReverse, of f: (Tensor) -> Tensor
) -> Tensor {
    hvp(at: [x], directions: [v], mode: mode) { f($0[0]) }[0]
}

/// The two blocks of `∇²f(x, y) · (vₓ, vᵧ)`:
/// `(∇²ₓₓf vₓ + ∇²ₓᵧf vᵧ,  ∇²ᵧₓf vₓ + ∇²ᵧᵧf vᵧ)`.
///
/// With `vₓ = 0` the first block is the mixed product `∇²ₓᵧf · vᵧ` that implicit and unrolled
/// hypergradients need, and the second is `∇²ᵧᵧf · vᵧ`, both from one nested sweep.
///
/// - Precondition: `f` returns one element; each direction has its argument's shape.
public func hvp(
    at x: Tensor, _ y: Tensor, directions: (Tensor, Tensor), mode: HVPMode = .reverseOverReverse,
    of f: (Tensor, Tensor) -> Tensor
) -> (Tensor, Tensor) {
    let h = hvp(at: [x, y], directions: [directions.0, directions.1], mode: mode) { f($0[0], $0[1]) }
    return (h[0], h[1])
}

/// `∇²f(xs) · vs` for a scalar function of several arguments, one block per argument.
///
/// - Precondition: `f` returns one element; one direction per argument, each of its argument's shape.
public func hvp(
    at xs: [Tensor], directions vs: [Tensor], mode: HVPMode = .reverseOverReverse, of f: ([Tensor]) -> Tensor
) -> [Tensor] {
    engineCheck(
        xs.count == vs.count,
        "\(AutoDiffError.invalidArgument(op: "hvp", reason: "\(xs.count) arguments but \(vs.count) directions"))")
    for (x, v) in zip(xs, vs) {
        engineCheck(
            x.shape == v.shape,
            "\(AutoDiffError.shapeMismatch(op: "hvp", lhs: x.shape, rhs: v.shape, reason: "a direction must have its argument's shape"))")
    }
    switch mode {
    case .reverseOverReverse:
        return valueWithGradient(at: xs) { xs in
            let g = valueWithGradient(at: xs, of: f).gradients
            return zip(g, vs).map { ($0 * $1).sum() }.reduce(Tensor(0), +)
        }.gradients
    case .forwardOverReverse:
        // One forward sweep over the gradient tape: the gradients are flattened into one output and
        // its tangent is split back into blocks.
        let flat = valueWithDifferential(at: xs, directions: vs) { xs in
            concatenate(valueWithGradient(at: xs, of: f).gradients.map { $0.reshaped(to: [$0.count]) })
        }.differential
        var offset = 0
        return xs.map { x in
            defer { offset += x.count }
            return flat.slice(alongAxis: 0, offset..<(offset + x.count)).reshaped(to: x.shape)
        }
    }
}

/// The mixed product `∇²ₓᵧ f · v = ∇ₓ ⟨∇ᵧ f(x, y), v⟩` (shape of `x`), for `v` of the shape of `y`.
///
/// - Precondition: `f` returns one element and `v.shape == y.shape`.
public func mixedHVP(at x: Tensor, _ y: Tensor, direction v: Tensor, of f: (Tensor, Tensor) -> Tensor) -> Tensor {
    engineCheck(
        v.shape == y.shape,
        "\(AutoDiffError.shapeMismatch(op: "mixedHVP", lhs: v.shape, rhs: y.shape, reason: "the direction must have the shape of y"))")
    return gradient(at: x) { x in (gradient(at: y) { y in f(x, y) } * v).sum() }
}

/// The Jacobian of `f` at `x`, of shape `f(x).shape + x.shape`: entry `[i…, j…]` is `∂fᵢ/∂xⱼ`.
/// Built row by row from one tape and `f(x).count` pullbacks.
public func jacobian(at x: Tensor, of f: (Tensor) -> Tensor) -> Tensor {
    let (value, pullback) = vjp(at: x, of: f)
    var rows = [Double]()
    rows.reserveCapacity(value.count * x.count)
    for i in 0..<value.count {
        var basis = value.constantZeros
        basis.scalars[i] = 1
        rows.append(contentsOf: pullback(basis).scalars)
    }
    return Tensor(shape: value.shape + x.shape, scalars: rows)
}

/// The Hessian of a scalar `f` at `x`, of shape `x.shape + x.shape`: the Jacobian of the gradient.
/// Costs `x.count` reverse sweeps over the gradient's tape; meant for small `x`.
///
/// - Precondition: `f` returns one element.
public func hessian(at x: Tensor, of f: (Tensor) -> Tensor) -> Tensor {
    jacobian(at: x) { x in gradient(at: x, of: f) }
}
