// Forward mode: Jacobian-vector products, with no tape.

/// The value of `f` at `xs` and its directional derivative `Σᵢ (∂f/∂xᵢ) vᵢ` (forward mode: every op
/// pushes its tangent along as it runs; nothing is stored for later).
///
/// - Precondition: one direction per argument, each of its argument's shape.
public func valueWithDifferential(
    at xs: [Tensor], directions: [Tensor], of f: ([Tensor]) -> Tensor
) -> (value: Tensor, differential: Tensor) {
    engineCheck(
        xs.count == directions.count,
        "\(AutoDiffError.invalidArgument(op: "jvp", reason: "\(xs.count) arguments but \(directions.count) directions"))")
    for (x, v) in zip(xs, directions) {
        engineCheck(
            x.shape == v.shape,
            "\(AutoDiffError.shapeMismatch(op: "jvp", lhs: x.shape, rhs: v.shape, reason: "a direction must have its argument's shape"))")
    }
    let level = Level(.forward)
    let tracked = zip(xs, directions).map { level.track($0, tangent: $1) }
    let y = f(tracked)
    let entry = y.entry(at: level)
    let value = y.primal(at: level)
    let tangent = entry >= 0 ? level.tangents[entry] : value.constantZeros
    level.isActive = false
    return (value, tangent)
}

/// The value of `f` at `x` and the Jacobian-vector product `(∂f/∂x) v` (forward mode).
///
/// - Precondition: `direction.shape == x.shape`.
public func jvp(at x: Tensor, direction: Tensor, of f: (Tensor) -> Tensor) -> (value: Tensor, tangent: Tensor) {
    let r = valueWithDifferential(at: [x], directions: [direction]) { f($0[0]) }
    return (r.value, r.differential)
}

/// The value of `f(x, y)` and `(∂f/∂x) vₓ + (∂f/∂y) vᵧ` (forward mode).
///
/// - Precondition: each direction has its argument's shape.
public func jvp(
    at x: Tensor, _ y: Tensor, directions: (Tensor, Tensor), of f: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, tangent: Tensor) {
    let r = valueWithDifferential(at: [x, y], directions: [directions.0, directions.1]) { f($0[0], $0[1]) }
    return (r.value, r.differential)
}
