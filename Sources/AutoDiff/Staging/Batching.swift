// Batching (`vmap`) of staged programs, after JAX's batching rules: the program is walked once; each
// value is either unbatched or carries a leading batch axis of extent B; each primitive with a batched
// input is replaced by its batching rule (`Primitive.applyBatched`), which emits ordinary primitives.
// Derivative programs are programs, so Jacobians, Hessians and per-sample gradients are batched
// programs too.

extension Program {
    /// The program computing this one on `batchSize` inputs at once (JAX's `vmap`): argument `k` gains
    /// a leading axis of extent `batchSize` when `batchedInputs[k]` (row `b` is the `b`-th input) and is
    /// shared by every batch element otherwise; every output gains a leading axis `batchSize`, row `b`
    /// being the output on the `b`-th inputs.
    ///
    /// Each primitive with a batched input is applied through its batching rule
    /// (`Primitive.applyBatched(_:isBatched:batchSize:)`): element-wise ops, matmul, sums, broadcasts,
    /// reshapes, slices and the normal product have rules without a loop (an unbatched matrix times a
    /// batched one is one GEMM with the batch folded into its rows); any other primitive runs once per
    /// batch element (slice, apply, stack). Values that do not depend on a batched input stay unbatched
    /// and are computed once. Batch before `optimized()`: the fused element-wise op has no rule of its
    /// own and would run per element.
    ///
    /// - Precondition: one flag per argument, at least one set, and `batchSize ≥ 1`.
    public func vmap(batchedInputs: [Bool], batchSize: Int) -> Program {
        engineCheck(
            batchedInputs.count == inputShapes.count && batchedInputs.contains(true) && batchSize >= 1,
            "\(AutoDiffError.invalidArgument(op: "Program.vmap", reason: "needs one flag per argument (\(inputShapes.count)), at least one batched, and a batch size ≥ 1; got \(batchedInputs) and \(batchSize)"))")
        let shapes = inputShapes.indices.map { batchedInputs[$0] ? [batchSize] + inputShapes[$0] : inputShapes[$0] }
        return stage(shapes: shapes, outputs: { arguments in
            var values = [Tensor?](repeating: nil, count: instructions.count)
            var batched = [Bool](repeating: false, count: instructions.count)
            for (i, instruction) in instructions.enumerated() {
                switch instruction.operation {
                case let .input(k):
                    values[i] = arguments[k]
                    batched[i] = batchedInputs[k]
                case let .constant(tensor):
                    values[i] = tensor
                case let .apply(op, indices):
                    let inputs = indices.map { values[$0]! }, flags = indices.map { batched[$0] }
                    guard flags.contains(true) else {
                        values[i] = Schedule.apply(op, inputs)
                        continue
                    }
                    let result = op.applyBatched(inputs, isBatched: flags, batchSize: batchSize)
                    engineCheck(
                        result.shape == [batchSize] + instruction.shape,
                        "\(AutoDiffError.shapeMismatch(op: "\(op.name) (batching rule)", lhs: result.shape, rhs: [batchSize] + instruction.shape, reason: "the rule returned the first shape, the batched output has the second"))")
                    values[i] = result
                    batched[i] = true
                }
                for dead in schedule.releases[i] { values[dead] = nil }
            }
            return outputs.map { batched[$0] ? values[$0]! : repeatedAlongBatch(values[$0]!, batchSize: batchSize) }
        })
    }

    /// The program `x ↦ ∂f/∂x` of a one-argument, one-output program `f`, of shape
    /// `outputShape + inputShape` (entry `[i…, j…]` is `∂fᵢ/∂xⱼ`, as `jacobian(at:of:)`): the VJP program
    /// batched over the rows of the identity, `Jᵀeᵢ` for every output element `i` in one program.
    ///
    /// - Precondition: one argument and one output.
    public func jacobian() -> Program {
        engineCheck(
            inputShapes.count == 1 && outputs.count == 1,
            "\(AutoDiffError.invalidArgument(op: "Program.jacobian", reason: "needs one argument and one output; the program has \(inputShapes.count) and \(outputs.count)"))")
        let inputShape = inputShapes[0], outputShape = outputShapes[0]
        let rows = elementCount(outputShape)
        var identity = [Double](repeating: 0, count: rows * rows)
        for i in 0..<rows { identity[i * rows + i] = 1 }
        let basis = Tensor(shape: [rows] + outputShape, scalars: identity)
        let pullbacks = vjp().vmap(batchedInputs: [false, true], batchSize: rows)
        return stage(shapes: [inputShape], outputs: { x in
            [pullbacks.outputs(at: [x[0], basis])[0].reshaped(to: outputShape + inputShape)]
        })
    }

    /// The program `x ↦ ∇²f(x)` of a one-argument scalar program, of shape `inputShape + inputShape`:
    /// the Jacobian of the gradient program, one batched reverse-over-reverse program.
    ///
    /// - Precondition: one argument, one output of one element.
    public func hessian() -> Program { gradient().jacobian() }
}

/// `value` (unbatched) repeated along a new leading axis of extent `batchSize`.
func repeatedAlongBatch(_ value: Tensor, batchSize: Int) -> Tensor {
    value.expandingShape(at: 0).broadcast(to: [batchSize] + value.shape)
}

extension Primitive {
    /// The default batching rule, correct for every primitive: for each batch element `b`, the op on
    /// row `b` of each batched input (and the unbatched inputs as they are), stacked along a new
    /// leading axis. Costs `batchSize` applications; ops that matter override it.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        applyPerBatchElement(inputs, isBatched: isBatched, batchSize: batchSize)
    }

    /// The op applied to each batch element in turn and the results stacked: `y[b] = op(x[b]…)`.
    public func applyPerBatchElement(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        let rows = (0..<batchSize).map { b in
            Schedule.apply(self, inputs.indices.map { isBatched[$0] ? inputs[$0][b] : inputs[$0] }).expandingShape(at: 0)
        }
        return concatenate(rows, alongAxis: 0)
    }
}

/// Batching helpers shared by the ops' rules.
enum Batching {
    /// The inputs of a broadcasting element-wise op made to broadcast per batch element: a batched
    /// input `[B] + s` of rank below the output's gets extent-1 axes after its batch axis, so that its
    /// own axes stay right-aligned with the other operand's (an unbatched input broadcasts against the
    /// batch axis as it is).
    static func alignedForBroadcast(_ inputs: [Tensor], isBatched: [Bool]) -> [Tensor] {
        let rank = inputs.indices.map { inputs[$0].rank - (isBatched[$0] ? 1 : 0) }.max() ?? 0
        return inputs.indices.map { isBatched[$0] ? padded(inputs[$0], toRank: rank) : inputs[$0] }
    }

    /// A batched `x` of shape `[B] + s` reshaped to `[B] + [1, …, 1] + s` with `s` padded to `rank` axes:
    /// its own axes right-aligned for broadcasting against a value of `rank` axes.
    static func padded(_ x: Tensor, toRank rank: Int) -> Tensor {
        let padding = [Int](repeating: 1, count: rank - (x.rank - 1))
        return x.reshaped(to: [x.shape[0]] + padding + x.shape.dropFirst())
    }

    /// The rule of a broadcasting element-wise binary op: the op on the aligned inputs.
    static func broadcasting(_ op: some BinaryPrimitive, _ inputs: [Tensor], isBatched: [Bool]) -> Tensor {
        let aligned = alignedForBroadcast(inputs, isBatched: isBatched)
        return op(aligned[0], aligned[1])
    }

    /// `[B, p, q] ↦ [B, q, p]`: each batch element's matrix transposed (a gather of the flattened
    /// elements, linear and differentiable like any gather).
    static func transposingMatrices(_ x: Tensor) -> Tensor {
        let (batch, rows, columns) = (x.shape[0], x.shape[1], x.shape[2])
        if rows == 1 || columns == 1 { return x.reshaped(to: [batch, columns, rows]) }
        var order = [Int]()
        order.reserveCapacity(x.count)
        for b in 0..<batch {
            for j in 0..<columns {
                for i in 0..<rows { order.append((b * rows + i) * columns + j) }
            }
        }
        return x.reshaped(to: [x.count]).gathering(AxisIndices(order, shape: [x.count]), alongAxis: 0)
            .reshaped(to: [batch, columns, rows])
    }
}
