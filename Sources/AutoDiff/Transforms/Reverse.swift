// Reverse mode: vjp, gradient, valueWithGradient (one, two and many arguments).

extension Level {
    /// Back-propagates `seed` from entry `output` through the tape and returns the adjoints of
    /// `wanted` (a `nil` adjoint means no path leads there).
    ///
    /// VJP rules run as ordinary tensor ops, so when outer levels are active the adjoints they produce
    /// are recorded there: this is what makes the backward pass differentiable. The level itself must be
    /// inactive, so nothing is recorded on the tape being walked.
    func backpropagate(from output: Int, seed: Tensor, to wanted: [Int]) -> [Tensor?] {
        engineCheck(!isActive, "internal: a level is back-propagated only after it is closed")
        guard output >= 0 else { return wanted.map { _ in nil } }
        var adjoints = [Tensor?](repeating: nil, count: output + 1)
        adjoints[output] = seed
        // Walk the chunks backwards, reading each in place (a subscript would copy every node).
        for chunk in stride(from: output / Level.chunkSize, through: 0, by: -1) {
            chunks[chunk].withUnsafeBufferPointer { nodes in
                for k in stride(from: nodes.count - 1, through: 0, by: -1) {
                    let i = chunk * Level.chunkSize + k
                    guard i <= output, adjoints[i] != nil else { continue }
                    if case .leaf = nodes[k] { continue }  // leaves keep their adjoint: they are returned
                    // Moved out of its slot, so the adjoint's storage is uniquely referenced and the
                    // first-order fast paths below overwrite it in place (its last use takes it).
                    var remaining = adjoints[i].take()
                    let constant = remaining!.activeTrace == nil
                    switch nodes[k] {
                    case .leaf:
                        continue
                    case let .unary(op, x, y, input):
                        var g = remaining.take()!
                        if !(constant && x.activeTrace == nil && op.vjpInPlace(&g, x: x, y: y)) { g = op.vjp(g, x: x, y: y) }
                        Level.accumulate(&adjoints[input], g)
                    case let .binary(op, a, b, y, inputA, inputB):
                        let fast = constant && a.activeTrace == nil && b.activeTrace == nil
                        if inputA >= 0 {
                            var g = inputB >= 0 ? remaining! : remaining.take()!
                            if !(fast && op.vjpAInPlace(&g, a: a, b: b, y: y)) { g = op.vjpA(g, a: a, b: b, y: y) }
                            Level.accumulate(&adjoints[inputA], g)
                        }
                        if inputB >= 0 {
                            var g = remaining.take()!
                            if !(fast && op.vjpBInPlace(&g, a: a, b: b, y: y)) { g = op.vjpB(g, a: a, b: b, y: y) }
                            Level.accumulate(&adjoints[inputB], g)
                        }
                    case let .nary(op, inputs, y, entries):
                        for (position, entry) in entries.enumerated() where entry >= 0 {
                            Level.accumulate(&adjoints[entry], op.vjp(remaining!, input: position, inputs: inputs, output: y))
                        }
                    }
                }
            }
        }
        return wanted.map { $0 >= 0 ? adjoints[$0] : nil }
    }

    /// `total += contribution`, in place when both are constants.
    @inline(__always)
    private static func accumulate(_ total: inout Tensor?, _ contribution: Tensor) {
        guard total != nil else {
            total = contribution
            return
        }
        if total!.activeTrace == nil && contribution.activeTrace == nil {
            Elementwise.addInPlace(&total!, contribution)
        } else {
            total = total! + contribution
        }
    }
}

/// The value of `f` at `xs` and its pullback: the map from a cotangent of the output (same shape) to
/// the cotangents of every argument, `v ↦ (∂f/∂xᵢ)ᵀ v`. The pullback may be called any number of times.
///
/// The pullback's results are themselves differentiable by any enclosing transform.
///
/// - Precondition (pullback): the cotangent has the output's shape.
public func valueWithPullback(
    at xs: [Tensor], of f: ([Tensor]) -> Tensor
) -> (value: Tensor, pullback: (Tensor) -> [Tensor]) {
    let level = Level(.reverse)
    let tracked = xs.map { level.track($0) }
    let y = f(tracked)
    let value = y.primal(at: level)
    let output = y.entry(at: level)
    let inputs = tracked.map { $0.entry(at: level) }
    level.isActive = false
    let pullback: (Tensor) -> [Tensor] = { v in
        engineCheck(
            v.shape == value.shape,
            "\(AutoDiffError.shapeMismatch(op: "pullback", lhs: v.shape, rhs: value.shape, reason: "the cotangent must have the output's shape"))")
        let adjoints = level.backpropagate(from: output, seed: v, to: inputs)
        return zip(adjoints, xs).map { $0 ?? $1.constantZeros }
    }
    return (value, pullback)
}

/// The value of `f` at `x` and its pullback `v ↦ (∂f/∂x)ᵀ v` (a vector-Jacobian product).
public func vjp(at x: Tensor, of f: (Tensor) -> Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) {
    let (value, pullback) = valueWithPullback(at: [x]) { f($0[0]) }
    return (value, { pullback($0)[0] })
}

/// The value of `f` at `(x, y)` and its pullback `v ↦ ((∂f/∂x)ᵀ v, (∂f/∂y)ᵀ v)`.
public func vjp(
    at x: Tensor, _ y: Tensor, of f: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) {
    let (value, pullback) = valueWithPullback(at: [x, y]) { f($0[0], $0[1]) }
    return (value, { v in let g = pullback(v); return (g[0], g[1]) })
}

/// The value of a scalar function and its gradient with respect to every argument.
///
/// - Precondition: `f` returns one element; otherwise the message says so and names the shape.
public func valueWithGradient(at xs: [Tensor], of f: ([Tensor]) -> Tensor) -> (value: Tensor, gradients: [Tensor]) {
    let (value, pullback) = valueWithPullback(at: xs, of: f)
    engineCheck(value.count == 1, "\(AutoDiffError.nonScalarOutput(transform: "gradient", shape: value.shape))")
    return (value, pullback(value.filled(with: 1)))
}

/// The value of a scalar function `f` at `x` and its gradient `∇f(x)` (reverse mode, one sweep).
///
/// - Precondition: `f` returns one element.
public func valueWithGradient(at x: Tensor, of f: (Tensor) -> Tensor) -> (value: Tensor, gradient: Tensor) {
    let (value, gradients) = valueWithGradient(at: [x]) { f($0[0]) }
    return (value, gradients[0])
}

/// The value of a scalar `f(x, y)` and both partial gradients `(∇ₓf, ∇ᵧf)`.
///
/// - Precondition: `f` returns one element.
public func valueWithGradient(
    at x: Tensor, _ y: Tensor, of f: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, gradient: (Tensor, Tensor)) {
    let (value, gradients) = valueWithGradient(at: [x, y]) { f($0[0], $0[1]) }
    return (value, (gradients[0], gradients[1]))
}

/// The gradient `∇f(x)` of a scalar function (reverse mode). Nestable: `f` may itself take gradients,
/// and the result may be differentiated again.
///
/// ```swift
/// let g = gradient(at: x) { x in (x * x).sum() }   // 2x
/// ```
///
/// - Precondition: `f` returns one element.
public func gradient(at x: Tensor, of f: (Tensor) -> Tensor) -> Tensor {
    valueWithGradient(at: x, of: f).gradient
}

/// Both partial gradients `(∇ₓf, ∇ᵧf)` of a scalar `f(x, y)`.
///
/// - Precondition: `f` returns one element.
public func gradient(at x: Tensor, _ y: Tensor, of f: (Tensor, Tensor) -> Tensor) -> (Tensor, Tensor) {
    valueWithGradient(at: x, y, of: f).gradient
}
