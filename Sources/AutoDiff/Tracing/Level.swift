import Synchronization

/// The position of a value inside one differentiation level: which level, and which entry of it.
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
    /// The entry of `level` (a tape node for reverse mode, a tangent slot for forward mode).
    let index: Int
}

/// One differentiation level: a reverse-mode tape or a forward-mode tangent store.
///
/// Every transform (`gradient`, `vjp`, `jvp`, …) opens a fresh level with an `order` above every level
/// opened before it, so nested transforms never confuse their perturbations: an op records on the
/// active level of highest order among its inputs, and a level only ever back-propagates into (or
/// pushes tangents from) the values it recorded itself. Each entry also remembers the trace the same
/// value has at the levels *below* (`lowerTraces`), so stripping a level off a value is an O(1)
/// lookup. Derivative rules run as ordinary tensor ops on those lower values, which is what makes the
/// backward pass of one level differentiable by the levels beneath it.
final class Level {
    /// Reverse levels keep a tape of pullbacks; forward levels keep one tangent per value.
    enum Kind { case reverse, forward }

    /// How a reverse-mode node maps the adjoint of its output to the adjoints of its inputs.
    enum Pullback {
        /// A variable or a value with no recorded inputs at this level.
        case leaf
        /// One input.
        case unary((Tensor) -> Tensor)
        /// Two inputs; a `nil` result means that input is not tracked at this level.
        case binary((Tensor) -> (Tensor?, Tensor?))
        /// Any number of inputs, in the order of the node's edges.
        case nary((Tensor) -> [Tensor?])
    }

    /// A reverse-mode tape entry: its pullback and its inputs' entries in `edges`.
    struct Node {
        var pullback: Pullback
        var firstEdge: Int32
        var edgeCount: Int32
    }

    private static let counter = Atomic<Int>(0)

    /// Strictly increasing across all levels ever opened: inner levels have higher order.
    let order: Int
    /// Reverse (tape) or forward (tangents).
    let kind: Kind
    /// False once the transform that opened the level has finished with it; traces into an inactive
    /// level are read through to the level below.
    @exclusivity(unchecked) var isActive = true
    /// For entry `i`, the trace of the same value at the levels below this one.
    @exclusivity(unchecked) var lowerTraces: [Trace?] = []
    /// Reverse mode: the tape, one node per recorded op.
    @exclusivity(unchecked) var nodes: [Node] = []
    /// Reverse mode: input entries of every node, concatenated (`-1` marks an untracked input).
    @exclusivity(unchecked) var edges: [Int] = []
    /// Forward mode: the tangent of entry `i`.
    @exclusivity(unchecked) var tangents: [Tensor] = []

    /// Opens a new level above all existing ones.
    init(_ kind: Kind) {
        self.kind = kind
        order = Level.counter.wrappingAdd(1, ordering: .relaxed).newValue
        if kind == .reverse {
            nodes.reserveCapacity(64)
            edges.reserveCapacity(128)
        }
    }

    /// Records a reverse-mode node and returns its entry.
    func record(_ pullback: Pullback, inputs: [Int], lower: Trace?) -> Int {
        nodes.append(Node(pullback: pullback, firstEdge: Int32(edges.count), edgeCount: Int32(inputs.count)))
        edges.append(contentsOf: inputs)
        lowerTraces.append(lower)
        return nodes.count - 1
    }

    /// Records a unary reverse-mode node without building an input array.
    func record(unary pullback: @escaping (Tensor) -> Tensor, input: Int, lower: Trace?) -> Int {
        nodes.append(Node(pullback: .unary(pullback), firstEdge: Int32(edges.count), edgeCount: 1))
        edges.append(input)
        lowerTraces.append(lower)
        return nodes.count - 1
    }

    /// Records a binary reverse-mode node without building an input array.
    func record(
        binary pullback: @escaping (Tensor) -> (Tensor?, Tensor?), inputs first: Int, _ second: Int,
        lower: Trace?
    ) -> Int {
        nodes.append(Node(pullback: .binary(pullback), firstEdge: Int32(edges.count), edgeCount: 2))
        edges.append(first)
        edges.append(second)
        lowerTraces.append(lower)
        return nodes.count - 1
    }

    /// Records a forward-mode value with its tangent and returns its entry.
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
        case .reverse: index = record(.leaf, inputs: [], lower: lower)
        case .forward: index = record(tangent: tangent ?? value.constantZeros, lower: lower)
        }
        return Tensor(shape: value.shape, scalars: value.scalars, trace: Trace(level: self, index: index))
    }
}

extension Tensor {
    /// The trace at the highest level that is still active, skipping finished levels.
    var activeTrace: Trace? {
        var current = trace
        while let t = current, !t.level.isActive { current = t.level.lowerTraces[t.index] }
        return current
    }

    /// The same value with `level` removed from its trace: what the ops below `level` see.
    func primal(at level: Level) -> Tensor {
        guard let t = activeTrace, t.level === level else { return self }
        return Tensor(shape: shape, scalars: scalars, trace: level.lowerTraces[t.index])
    }

    /// The entry of this value at `level`, or `-1` if it is not tracked there.
    func entry(at level: Level) -> Int {
        guard let t = activeTrace, t.level === level else { return -1 }
        return t.index
    }

    /// A constant of zeros with this shape.
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
