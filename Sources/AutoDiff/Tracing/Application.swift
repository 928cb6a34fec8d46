/// The one mechanism through which every differentiable op runs.
///
/// An op supplies, in one place, its *value* (a raw kernel on constant tensors), its *JVP rule* (the
/// tangent of the output from the tangent of an input) and its *VJP rule* (the adjoint of an input from
/// the adjoint of the output). Both rules must be written with differentiable tensor ops, so they are
/// themselves recorded by the levels below the one being differentiated.
///
/// Application is recursive over levels: with no active level the kernel runs directly (the fast
/// path); otherwise the op strips the highest active level off its inputs, applies itself to what is
/// left (recording on the lower levels), and records one node (reverse) or one tangent (forward) on
/// the highest level.
enum Application {
    /// Applies a one-input op.
    ///
    /// - Parameters:
    ///   - value: computes the output from a constant input.
    ///   - jvp: `(tangent of x, x, y) -> tangent of y`.
    ///   - vjp: `(adjoint of y, x, y) -> adjoint of x`.
    @inline(__always)
    static func unary(
        _ x: Tensor,
        value: (Tensor) -> Tensor,
        jvp: (Tensor, Tensor, Tensor) -> Tensor,
        vjp: @escaping (Tensor, Tensor, Tensor) -> Tensor
    ) -> Tensor {
        guard let trace = x.activeTrace else { return value(x) }
        return tracedUnary(x, trace, value: value, jvp: jvp, vjp: vjp)
    }

    static func tracedUnary(
        _ x: Tensor, _ trace: Trace,
        value: (Tensor) -> Tensor,
        jvp: (Tensor, Tensor, Tensor) -> Tensor,
        vjp: @escaping (Tensor, Tensor, Tensor) -> Tensor
    ) -> Tensor {
        let level = trace.level, entry = trace.index
        let px = Tensor(shape: x.shape, scalars: x.scalars, trace: level.lowerTraces[entry])
        let y = unary(px, value: value, jvp: jvp, vjp: vjp)
        let index: Int
        switch level.kind {
        case .reverse:
            index = level.record(unary: { g in vjp(g, px, y) }, input: entry, lower: y.trace)
        case .forward:
            index = level.record(tangent: jvp(level.tangents[entry], px, y), lower: y.trace)
        }
        return Tensor(shape: y.shape, scalars: y.scalars, trace: Trace(level: level, index: index))
    }

    /// Applies a two-input op. Each input has its own JVP and VJP rule (partial derivatives), and only
    /// the rules of inputs tracked at the recording level are ever run.
    ///
    /// - Parameters:
    ///   - value: computes the output from constant inputs.
    ///   - jvpA, jvpB: `(tangent of that input, a, b, y) -> its contribution to the tangent of y`.
    ///   - vjpA, vjpB: `(adjoint of y, a, b, y) -> adjoint of that input`.
    @inline(__always)
    static func binary(
        _ a: Tensor, _ b: Tensor,
        value: (Tensor, Tensor) -> Tensor,
        jvpA: (Tensor, Tensor, Tensor, Tensor) -> Tensor,
        jvpB: (Tensor, Tensor, Tensor, Tensor) -> Tensor,
        vjpA: @escaping (Tensor, Tensor, Tensor, Tensor) -> Tensor,
        vjpB: @escaping (Tensor, Tensor, Tensor, Tensor) -> Tensor
    ) -> Tensor {
        let ta = a.activeTrace, tb = b.activeTrace
        guard let level = highestLevel(ta, tb) else { return value(a, b) }
        return tracedBinary(a, ta, b, tb, level, value: value, jvpA: jvpA, jvpB: jvpB, vjpA: vjpA, vjpB: vjpB)
    }

    static func tracedBinary(
        _ a: Tensor, _ ta: Trace?, _ b: Tensor, _ tb: Trace?, _ level: Level,
        value: (Tensor, Tensor) -> Tensor,
        jvpA: (Tensor, Tensor, Tensor, Tensor) -> Tensor,
        jvpB: (Tensor, Tensor, Tensor, Tensor) -> Tensor,
        vjpA: @escaping (Tensor, Tensor, Tensor, Tensor) -> Tensor,
        vjpB: @escaping (Tensor, Tensor, Tensor, Tensor) -> Tensor
    ) -> Tensor {
        let ea = ta.map { $0.level === level ? $0.index : -1 } ?? -1
        let eb = tb.map { $0.level === level ? $0.index : -1 } ?? -1
        let pa = ea >= 0 ? Tensor(shape: a.shape, scalars: a.scalars, trace: level.lowerTraces[ea]) : a
        let pb = eb >= 0 ? Tensor(shape: b.shape, scalars: b.scalars, trace: level.lowerTraces[eb]) : b
        let y = binary(pa, pb, value: value, jvpA: jvpA, jvpB: jvpB, vjpA: vjpA, vjpB: vjpB)
        let index: Int
        switch level.kind {
        case .reverse:
            let needA = ea >= 0, needB = eb >= 0
            index = level.record(
                binary: { g in (needA ? vjpA(g, pa, pb, y) : nil, needB ? vjpB(g, pa, pb, y) : nil) },
                inputs: ea, eb, lower: y.trace)
        case .forward:
            var tangent: Tensor
            if ea >= 0 {
                tangent = jvpA(level.tangents[ea], pa, pb, y)
                if eb >= 0 { tangent = tangent + jvpB(level.tangents[eb], pa, pb, y) }
            } else {
                tangent = jvpB(level.tangents[eb], pa, pb, y)
            }
            index = level.record(tangent: tangent, lower: y.trace)
        }
        return Tensor(shape: y.shape, scalars: y.scalars, trace: Trace(level: level, index: index))
    }

    /// Applies an op of any number of inputs.
    ///
    /// - Parameters:
    ///   - value: computes the output from constant inputs.
    ///   - jvp: `(i, tangent of input i, inputs, y) -> its contribution to the tangent of y`.
    ///   - vjp: `(i, adjoint of y, inputs, y) -> adjoint of input i`.
    static func nary(
        _ inputs: [Tensor],
        value: ([Tensor]) -> Tensor,
        jvp: (Int, Tensor, [Tensor], Tensor) -> Tensor,
        vjp: @escaping (Int, Tensor, [Tensor], Tensor) -> Tensor
    ) -> Tensor {
        var level: Level?
        for input in inputs {
            if let t = input.activeTrace, t.level.order > (level?.order ?? Int.min) { level = t.level }
        }
        guard let level else { return value(inputs) }
        let entries = inputs.map { $0.entry(at: level) }
        let primals = inputs.map { $0.primal(at: level) }
        let y = nary(primals, value: value, jvp: jvp, vjp: vjp)
        let index: Int
        switch level.kind {
        case .reverse:
            let pullback: (Tensor) -> [Tensor?] = { g in
                entries.indices.map { i in entries[i] >= 0 ? vjp(i, g, primals, y) : nil }
            }
            index = level.record(.nary(pullback), inputs: entries, lower: y.trace)
        case .forward:
            var tangent: Tensor?
            for (i, e) in entries.enumerated() where e >= 0 {
                let part = jvp(i, level.tangents[e], primals, y)
                tangent = tangent.map { $0 + part } ?? part
            }
            index = level.record(tangent: tangent!, lower: y.trace)
        }
        return Tensor(shape: y.shape, scalars: y.scalars, trace: Trace(level: level, index: index))
    }
}
