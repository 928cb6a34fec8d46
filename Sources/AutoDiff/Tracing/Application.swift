/// The one mechanism through which every primitive runs (see `Primitive`).
///
/// Application is recursive over levels: with no active level the op's value kernel runs directly
/// (the fast path); otherwise the op strips the highest active level off its inputs, applies itself to
/// what is left (recording on the lower levels), and records on the highest level:
/// - reverse: one tape node holding the op value and the inputs and output its VJP rule reads (no
///   closure, and no array for one or two inputs);
/// - forward: the output's tangent, from the op's JVP rule;
/// - staging (always the bottom level): one program instruction, with the shape from the op's shape
///   rule and no value computed.
enum Application {
    /// Applies a one-input primitive.
    @inline(__always)
    static func unary<Op: UnaryPrimitive>(_ op: Op, _ x: Tensor) -> Tensor {
        guard let trace = x.activeTrace else { return op.value(x) }
        return tracedUnary(op, x, trace)
    }

    /// `trace` (and `level` below) are taken (`consuming`): the output's trace reuses the reference
    /// instead of retaining the level once more.
    static func tracedUnary<Op: UnaryPrimitive>(_ op: Op, _ x: Tensor, _ trace: consuming Trace) -> Tensor {
        let level = trace.level, entry = trace.index
        if level.kind == .staging { return level.stage(op, arguments: [x], shape: op.outputShape(x.shape)) }
        let px = Tensor(shape: x.shape, scalars: x.storage, trace: level.lowerTraces[entry])
        let y = unary(op, px)
        let index: Int
        switch level.kind {
        case .reverse:
            index = level.record(UnaryNode(op, x: px, y: y, input: entry), lower: y.trace)
        case .forward:
            index = level.record(tangent: op.jvp(level.tangents[entry], x: px, y: y), lower: y.trace)
        case .staging:
            engineFailure("internal: a staging level records before this switch")
        }
        return Tensor(shape: y.shape, scalars: y.storage, trace: Trace(level: level, index: index))
    }

    /// Applies a two-input primitive. Only the rules of inputs tracked at the recording level run.
    @inline(__always)
    static func binary<Op: BinaryPrimitive>(_ op: Op, _ a: Tensor, _ b: Tensor) -> Tensor {
        let ta = a.activeTrace, tb = b.activeTrace
        guard let level = highestLevel(ta, tb) else { return op.value(a, b) }
        return tracedBinary(op, a, ta, b, tb, level)
    }

    static func tracedBinary<Op: BinaryPrimitive>(
        _ op: Op, _ a: Tensor, _ ta: Trace?, _ b: Tensor, _ tb: Trace?, _ level: consuming Level
    ) -> Tensor {
        if level.kind == .staging {
            return level.stage(op, arguments: [a, b], shape: op.outputShape(a.shape, b.shape))
        }
        let ea = ta.map { $0.level === level ? $0.index : -1 } ?? -1
        let eb = tb.map { $0.level === level ? $0.index : -1 } ?? -1
        let pa = ea >= 0 ? Tensor(shape: a.shape, scalars: a.storage, trace: level.lowerTraces[ea]) : a
        let pb = eb >= 0 ? Tensor(shape: b.shape, scalars: b.storage, trace: level.lowerTraces[eb]) : b
        let y = binary(op, pa, pb)
        let index: Int
        switch level.kind {
        case .reverse:
            index = level.record(BinaryNode(op, a: pa, b: pb, y: y, inputA: ea, inputB: eb), lower: y.trace)
        case .forward:
            var tangent: Tensor
            if ea >= 0 {
                tangent = op.jvpA(level.tangents[ea], a: pa, b: pb, y: y)
                if eb >= 0 { tangent = tangent + op.jvpB(level.tangents[eb], a: pa, b: pb, y: y) }
            } else {
                tangent = op.jvpB(level.tangents[eb], a: pa, b: pb, y: y)
            }
            index = level.record(tangent: tangent, lower: y.trace)
        case .staging:
            engineFailure("internal: a staging level records before this switch")
        }
        return Tensor(shape: y.shape, scalars: y.storage, trace: Trace(level: level, index: index))
    }

    /// Applies a primitive of any number of inputs.
    static func nary<Op: Primitive>(_ op: Op, _ inputs: [Tensor]) -> Tensor {
        var level: Level?
        for input in inputs {
            if let t = input.activeTrace, t.level.order > (level?.order ?? Int.min) { level = t.level }
        }
        guard let level else { return op.value(inputs) }
        if level.kind == .staging {
            return level.stage(op, arguments: inputs, shape: op.outputShape(inputs.map(\.shape)))
        }
        let entries = inputs.map { $0.entry(at: level) }
        let primals = inputs.map { $0.primal(at: level) }
        let y = nary(op, primals)
        let index: Int
        switch level.kind {
        case .reverse:
            index = level.record(NaryNode(op, inputs: primals, y: y, entries: entries), lower: y.trace)
        case .forward:
            var tangent: Tensor?
            for (i, e) in entries.enumerated() where e >= 0 {
                let part = op.jvp(level.tangents[e], input: i, inputs: primals, output: y)
                tangent = tangent.map { $0 + part } ?? part
            }
            index = level.record(tangent: tangent!, lower: y.trace)
        case .staging:
            engineFailure("internal: a staging level records before this switch")
        }
        return Tensor(shape: y.shape, scalars: y.storage, trace: Trace(level: level, index: index))
    }
}
