// Algebraic identities that symbolic derivatives create, applied as a pass.

extension Program {
    /// Rewrites, where the output shape is unchanged:
    /// `x·1 → x`, `1·x → x`, `x/1 → x`, `x + 0 → x`, `0 + x → x`, `x − 0 → x`, `0 − x → −x`,
    /// `−(−x) → x`, `(xᵀ)ᵀ → x`, `reshape(reshape(x)) → reshape(x)` (and a reshape to x's own shape
    /// → x), `sum(broadcast(x), toShape: x.shape) → k·x` (k copies summed), and `matmul(aᵀ, b)` /
    /// `matmul(a, bᵀ)` → one `matmul` with the transpose flag flipped (no transposed copy).
    ///
    /// `x·0` is *not* rewritten to 0: that differs from IEEE arithmetic when x is infinite or NaN.
    public func simplifyingIdentities() -> Program {
        rewritten { _, instruction, arguments, builder in
            guard case let .apply(op, _) = instruction.operation else { return builder.add(instruction, arguments) }
            let shape = instruction.shape
            func same(_ index: Int) -> Bool { builder.instructions[index].shape == shape }
            switch op {
            case is Multiply:
                if builder.isConstant(arguments[1], equalTo: 1), same(arguments[0]) { return arguments[0] }
                if builder.isConstant(arguments[0], equalTo: 1), same(arguments[1]) { return arguments[1] }
            case is Divide:
                if builder.isConstant(arguments[1], equalTo: 1), same(arguments[0]) { return arguments[0] }
            case is Add:
                if builder.isConstant(arguments[1], equalTo: 0), same(arguments[0]) { return arguments[0] }
                if builder.isConstant(arguments[0], equalTo: 0), same(arguments[1]) { return arguments[1] }
            case is Subtract:
                if builder.isConstant(arguments[1], equalTo: 0), same(arguments[0]) { return arguments[0] }
                if builder.isConstant(arguments[0], equalTo: 0), same(arguments[1]) {
                    return builder.add(.apply(Negate(), arguments: [arguments[1]]), shape: shape)
                }
            case is Negate:
                if let inner = builder.application(arguments[0]), inner.op is Negate { return inner.arguments[0] }
            case is Transpose:
                if let inner = builder.application(arguments[0]), inner.op is Transpose { return inner.arguments[0] }
            case is Reshape:
                if same(arguments[0]) { return arguments[0] }
                if let inner = builder.application(arguments[0]), inner.op is Reshape {
                    if builder.instructions[inner.arguments[0]].shape == shape { return inner.arguments[0] }
                    return builder.add(.apply(op, arguments: inner.arguments), shape: shape)
                }
            case is SumToShape:
                if let inner = builder.application(arguments[0]), inner.op is Broadcast, same(inner.arguments[0]) {
                    let copies = builder.instructions[arguments[0]].shape.reduce(1, *) / Swift.max(1, shape.reduce(1, *))
                    let k = builder.add(.constant(Tensor(Double(copies))), shape: [])
                    return builder.add(.apply(Multiply(), arguments: [inner.arguments[0], k]), shape: shape)
                }
            case let matmul as Matmul:
                var folded = matmul, operands = arguments
                if let a = builder.application(arguments[0]), a.op is Transpose {
                    folded.transposeA.toggle()
                    operands[0] = a.arguments[0]
                }
                if let b = builder.application(arguments[1]), b.op is Transpose {
                    folded.transposeB.toggle()
                    operands[1] = b.arguments[0]
                }
                if operands != arguments { return builder.add(.apply(folded, arguments: operands), shape: shape) }
            default:
                break
            }
            return builder.add(instruction, arguments)
        }
    }
}
