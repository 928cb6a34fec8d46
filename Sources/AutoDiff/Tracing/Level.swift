import Synchronization

/// The position of a value inside one level: which level, and which entry of it.
///
/// A `Trace` is two words stored inline in `Tensor`; recording an op never allocates a trace object.
///
/// Sendability: a level is created, recorded on and read by the one thread that runs its transform
/// (every transform runs its closure synchronously), so a traced tensor never needs to cross threads;
/// a constant tensor (no trace) carries only immutable value storage. A traced tensor handed to
/// another thread while its transform is still running is a misuse that the engine does not detect.
struct Trace: @unchecked Sendable {
    /// The level that recorded the value.
    let level: Level
    /// The entry of `level` (a tape node for reverse mode, a tangent slot for forward mode, an
    /// instruction for staging).
    let index: Int
}

/// One level: a reverse-mode tape, a forward-mode tangent store, or a program being staged.
///
/// Every transform (`gradient`, `vjp`, `jvp`, …) opens a fresh level with an `order` above every level
/// opened before it, so nested transforms never confuse their perturbations: an op records on the
/// active level of highest order among its inputs, and a level only ever back-propagates into (or
/// pushes tangents from) the values it recorded itself. Each entry also remembers the trace the same
/// value has at the levels *below* (`lowerTraces`), so stripping a level off a value is an O(1)
/// lookup. Derivative rules run as ordinary tensor ops on those lower values, which is what makes the
/// backward pass of one level differentiable by the levels beneath it.
///
/// A staging level (`stage(shapes:_:)`) is the bottom of its stack: its values are symbolic (a shape,
/// no elements) and an op applied to them appends an instruction to the program instead of running.
final class Level {
    /// Reverse levels keep a tape of nodes; forward levels keep one tangent per value; staging levels
    /// keep the instructions of a program.
    enum Kind { case reverse, forward, staging }

    private static let counter = Atomic<Int>(0)

    /// Strictly increasing across all levels ever opened: inner levels have higher order.
    let order: Int
    /// Reverse (tape), forward (tangents) or staging (program).
    let kind: Kind
    /// False once the transform that opened the level has finished with it; traces into an inactive
    /// level are read through to the level below.
    @exclusivity(unchecked) var isActive = true
    /// For entry `i`, the trace of the same value at the levels below this one.
    @exclusivity(unchecked) var lowerTraces: [Trace?] = []
    /// Reverse mode: the tape, one node per recorded op (entry `i` is node `i`); a node is a reference,
    /// so growing the array moves one word per node and copies no tensor.
    @exclusivity(unchecked) var nodes: [TapeNode] = []
    /// Forward mode: the tangent of entry `i`.
    @exclusivity(unchecked) var tangents: [Tensor] = []
    /// Staging: the program's instructions, entry `i` being instruction `i`.
    @exclusivity(unchecked) var instructions: [Program.Instruction] = []

    /// Opens a new level above all existing ones.
    init(_ kind: Kind) {
        self.kind = kind
        order = Level.counter.wrappingAdd(1, ordering: .relaxed).newValue
        if kind == .reverse {
            lowerTraces.reserveCapacity(64)
            nodes.reserveCapacity(64)
        }
    }

    /// Records a reverse-mode node and returns its entry.
    @inline(__always)
    func record(_ node: TapeNode, lower: Trace?) -> Int {
        nodes.append(node)
        lowerTraces.append(lower)
        return nodes.count - 1
    }

    /// Records a forward-mode value with its tangent and returns its entry.
    @inline(__always)
    func record(tangent: Tensor, lower: Trace?) -> Int {
        tangents.append(tangent)
        lowerTraces.append(lower)
        return tangents.count - 1
    }

    /// Makes `value` a variable of this level: a leaf node (reverse) or a value carrying `tangent`
    /// (forward).
    func track(_ value: Tensor, tangent: Tensor? = nil) -> Tensor {
        let lower = value.activeTrace
        let index: Int
        switch kind {
        case .reverse: index = record(TapeNode.leaf, lower: lower)
        case .forward: index = record(tangent: tangent ?? value.constantZeros, lower: lower)
        case .staging: engineFailure("internal: staging levels create their inputs with `input(shape:)`")
        }
        return Tensor(shape: value.shape, scalars: value.storage, trace: Trace(level: self, index: index))
    }
}

extension Tensor {
    /// The trace at the highest level that is still active, skipping finished levels.
    @inline(__always)
    var activeTrace: Trace? {
        var current = trace
        while let t = current, !t.level.isActive { current = t.level.lowerTraces[t.index] }
        return current
    }

    /// The same value with `level` removed from its trace: what the ops below `level` see.
    func primal(at level: Level) -> Tensor {
        guard let t = activeTrace, t.level === level else { return self }
        return Tensor(shape: shape, scalars: storage, trace: level.lowerTraces[t.index])
    }

    /// The entry of this value at `level`, or `-1` if it is not tracked there.
    func entry(at level: Level) -> Int {
        guard let t = activeTrace, t.level === level else { return -1 }
        return t.index
    }

    /// A constant of zeros with this shape (also for a symbolic tensor: the zeros are a constant).
    var constantZeros: Tensor { filled(with: 0) }
}

/// The active level of highest order among the traces, if any.
@inline(__always)
func highestLevel(_ a: Trace?, _ b: Trace?) -> Level? {
    switch (a, b) {
    case (nil, nil): return nil
    case let (x?, nil): return x.level
    case let (nil, y?): return y.level
    case let (x?, y?): return x.level.order >= y.level.order ? x.level : y.level
    }
}
