/// A dense, row-major tensor of `Double` with value semantics (copy-on-write storage).
///
/// A `Tensor` is what every differentiable function in this library consumes and produces. Besides its
/// `shape` and `scalars` it may carry a *trace*: the record that it was computed inside an active
/// differentiation level (see `gradient(at:of:)`, `jvp(at:direction:of:)`). Traces are invisible to
/// users; they are what lets ops record themselves on the right tape when transforms are nested.
///
/// Scalars are rank-0 tensors (`shape == []`, one element).
public struct Tensor: Sendable {
    /// The extent of each axis, outermost first. `[]` for a scalar.
    public internal(set) var shape: [Int]
    /// The elements in row-major order (empty for a symbolic tensor being staged).
    var storage: [Double]
    /// Where this value sits in the active levels, or `nil` for a constant.
    var trace: Trace?

    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)`.
    ///
    /// - Precondition: the tensor has values: inside a function being staged (`stage(shapes:_:)`) a
    ///   tensor is symbolic, and reading its elements stops with a message saying how to restructure.
    public internal(set) var scalars: [Double] {
        get {
            if storage.isEmpty, trace != nil, let placeholder = requireConcrete(self, reading: "scalars") { return placeholder }
            return storage
        }
        _modify { yield &storage }
    }

    /// Internal memberwise initialiser; callers guarantee `scalars.count == shape product` (or an
    /// empty `scalars` for a symbolic tensor). The first large tensor installs the engine's `HeapPolicy`.
    init(shape: [Int], scalars: [Double], trace: Trace?) {
        if scalars.count >= HeapPolicy.largeCount { _ = HeapPolicy.installed }
        self.shape = shape
        self.storage = scalars
        self.trace = trace
    }

    /// A rank-0 tensor holding `scalar`.
    public init(_ scalar: Double) {
        self.init(shape: [], scalars: [scalar], trace: nil)
    }

    /// A rank-1 tensor holding `scalars`.
    public init(_ scalars: [Double]) {
        self.init(shape: [scalars.count], scalars: scalars, trace: nil)
    }

    /// A tensor of the given `shape` holding `scalars` in row-major order.
    ///
    /// - Precondition: every extent is non-negative and `scalars.count` equals the product of `shape`;
    ///   the message names both.
    public init(shape: [Int], scalars: [Double]) {
        let count = require(try Shapes.elementCount(of: shape, op: "Tensor(shape:scalars:)"))
        engineCheck(
            scalars.count == count,
            "Tensor(shape:scalars:): shape \(shape) holds \(count) elements but \(scalars.count) scalars were given")
        self.init(shape: shape, scalars: scalars, trace: nil)
    }

    /// A tensor of the given `shape` filled with `value`.
    ///
    /// - Precondition: every extent is non-negative (checked before allocating; the message names the shape).
    public init(repeating value: Double, shape: [Int]) {
        self.init(repeating: value, shape: shape, op: "Tensor(repeating:shape:)")
    }

    /// A tensor of zeros with the given `shape` (extents checked as in `init(repeating:shape:)`).
    public init(zeros shape: [Int]) { self.init(repeating: 0, shape: shape, op: "Tensor(zeros:)") }

    /// A tensor of ones with the given `shape` (extents checked as in `init(repeating:shape:)`).
    public init(ones shape: [Int]) { self.init(repeating: 1, shape: shape, op: "Tensor(ones:)") }

    /// A tensor of the given `shape` whose element at flat index `i` is `generator(i)`.
    ///
    /// - Precondition: every extent is non-negative (checked before allocating; the message names the shape).
    public init(shape: [Int], generator: (Int) -> Double) {
        let count = require(try Shapes.elementCount(of: shape, op: "Tensor(shape:generator:)"))
        self.init(shape: shape, scalars: (0..<count).map(generator), trace: nil)
    }

    /// The filled tensor behind `init(repeating:shape:)`, `init(zeros:)` and `init(ones:)`; `op` names the
    /// public initialiser in the message.
    private init(repeating value: Double, shape: [Int], op: String) {
        let count = require(try Shapes.elementCount(of: shape, op: op))
        self.init(shape: shape, scalars: Array(repeating: value, count: count), trace: nil)
    }

    /// The number of axes.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var count: Int { storage.isEmpty && trace != nil ? shape.reduce(1, *) : storage.count }
    /// The single element of a one-element tensor.
    ///
    /// - Precondition: `count == 1`; the message names the shape otherwise.
    public var scalar: Double {
        engineCheck(count == 1, "Tensor.scalar: expected one element, the shape is \(shape)")
        return scalars[0]
    }

    /// The same values with every differentiation trace removed: a constant.
    ///
    /// Use it to stop gradients (`x.detached` has derivative zero with respect to `x`).
    /// Inside a staged function the result stays symbolic (it is a value of the program, with no
    /// derivative).
    public var detached: Tensor { Tensor(shape: shape, scalars: storage, trace: stagingTrace) }

    /// Whether any element is NaN or infinite.
    public var hasNonFinite: Bool { scalars.contains { !$0.isFinite } }

    /// A constant tensor of the same shape as `self`, filled with `value`.
    func filled(with value: Double) -> Tensor {
        Tensor(shape: shape, scalars: Array(repeating: value, count: count), trace: nil)
    }
}

extension Tensor: CustomStringConvertible {
    /// A compact rendering: the shape and up to eight elements.
    public var description: String {
        if storage.isEmpty && trace != nil && count > 0 { return "Tensor(symbolic, shape: \(shape))" }
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        let more = count > 8 ? ", … (\(count) elements)" : ""
        return shape.isEmpty ? "Tensor(\(scalars.first ?? .nan))" : "Tensor(shape: \(shape), [\(shown)\(more)])"
    }
}

extension Tensor {
    /// Whether two tensors have equal shapes and element-wise values within `tolerance`
    /// (absolute, scaled by `max(1, |a|, |b|)`).
    public func isApproximatelyEqual(to other: Tensor, tolerance: Double = 1e-12) -> Bool {
        guard shape == other.shape else { return false }
        for (a, b) in zip(scalars, other.scalars) where abs(a - b) > tolerance * max(1, abs(a), abs(b)) {
            return false
        }
        return true
    }
}
