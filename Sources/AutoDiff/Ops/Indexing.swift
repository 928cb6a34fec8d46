// Gather and scatter-add along an axis (each the other's adjoint), and the cross-entropy over class
// indices built on gather. Index arguments are integer constants: they are never differentiated.

/// Integer indices along one axis of a tensor, with the shape they are laid out in.
///
/// Built from a `Tensor` whose elements are whole numbers (e.g. the output of `argmax(alongAxis:)` or a
/// label tensor) or from `[Int]` directly; either way a constant.
public struct AxisIndices: Hashable, Sendable {
    /// The indices in row-major order.
    public var values: [Int]
    /// Their layout.
    public var shape: [Int]

    /// Indices `values` laid out as `shape`.
    ///
    /// - Precondition: `values.count` is the product of `shape`.
    public init(_ values: [Int], shape: [Int]) {
        engineCheck(
            values.count == shape.reduce(1, *),
            "AxisIndices: shape \(shape) holds \(shape.reduce(1, *)) indices but \(values.count) were given")
        self.values = values
        self.shape = shape
    }

    /// The whole numbers held by `tensor`, in its shape.
    ///
    /// - Precondition: every element is a whole number representable as `Int`.
    public init(_ tensor: Tensor) {
        let values = tensor.scalars.map { v -> Int in
            engineCheck(
                v.rounded() == v && Swift.abs(v) < 9.0e15,
                "AxisIndices: the index tensor of shape \(tensor.shape) holds \(v), which is not a whole number")
            return Int(v)
        }
        self.init(values, shape: tensor.shape)
    }

    /// The Swift expression constructing these indices.
    var swiftLiteral: String { "AxisIndices(\(values), shape: \(shape))" }

    /// `[outer, extent along axis, inner]` of `shape` at `axis`.
    static func split(_ shape: [Int], _ axis: Int) -> (outer: Int, extent: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// Stops unless these indices address `source` (of `sourceShape`) along `axis`: equal ranks, equal
    /// extents off the axis, and every index in `0..<sourceShape[axis]`.
    func check(against sourceShape: [Int], axis: Int, op: String) {
        engineCheck(
            shape.count == sourceShape.count
                && (0..<shape.count).allSatisfy { $0 == axis || shape[$0] == sourceShape[$0] },
            "\(AutoDiffError.shapeMismatch(op: op, lhs: sourceShape, rhs: shape, reason: "the index tensor must have the tensor's rank and its extents off axis \(axis)"))")
        let bound = sourceShape[axis]
        if let bad = values.first(where: { $0 < 0 || $0 >= bound }) {
            engineFailure("\(AutoDiffError.invalidArgument(op: op, reason: "index \(bad) is outside 0..<\(bound) along axis \(axis) of shape \(sourceShape)"))")
        }
    }
}

extension Tensor {
    /// `out[o, i, r] = self[o, indices[o, i, r], r]` along `axis` (PyTorch's `gather`): the output has
    /// the indices' shape. JVP: the same gather of the tangent; VJP: `scatterAdding` the adjoint back.
    ///
    /// - Precondition: `indices` has the tensor's rank, its extents off `axis`, and entries in range.
    public func gathering(_ indices: AxisIndices, alongAxis axis: Int) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "gathering(_:alongAxis:)"))
        indices.check(against: shape, axis: a, op: "gathering(_:alongAxis: \(axis))")
        return Gather(axis: a, indices: indices)(self)
    }

    /// `out = zeros(shape)`, then `out[o, indices[o, i, r], r] += self[o, i, r]` along `axis`: the adjoint
    /// of `gathering`. JVP: the same scatter of the tangent; VJP: `gathering` the adjoint.
    ///
    /// - Precondition: `indices` has the tensor's shape; `shape` equals it off `axis`; entries in
    ///   `0..<shape[axis]`.
    public func scatterAdding(_ indices: AxisIndices, alongAxis axis: Int, into shape: [Int]) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "scatterAdding(_:alongAxis:into:)"))
        engineCheck(
            indices.shape == self.shape,
            "\(AutoDiffError.shapeMismatch(op: "scatterAdding(_:alongAxis: \(axis), into: \(shape))", lhs: self.shape, rhs: indices.shape, reason: "the source and the index tensor must have one shape"))")
        indices.check(against: shape, axis: a, op: "scatterAdding(_:alongAxis: \(axis), into: \(shape))")
        return ScatterAdd(axis: a, indices: indices, targetShape: shape)(self)
    }
}

/// The primitive behind `gathering(_:alongAxis:)`. Linear in its input: `ẏ = gather(ẋ)`,
/// `x̄ = scatterAdd(ȳ)` into the input's shape.
public struct Gather: UnaryPrimitive {
    /// The (non-negative) axis gathered along.
    public var axis: Int
    /// The constant indices (shape = the output's shape).
    public var indices: AxisIndices

    /// The gather of `indices` along `axis` (checked by `gathering(_:alongAxis:)`).
    public init(axis: Int, indices: AxisIndices) {
        self.axis = axis
        self.indices = indices
    }

    /// `"gather"`.
    public var name: String { "gather" }
    /// The indices' shape.
    public func outputShape(_ shape: [Int]) -> [Int] { indices.shape }
    /// `out[o, i, r] = x[o, indices[o, i, r], r]`.
    public func value(_ x: Tensor) -> Tensor {
        let (outer, extent, inner) = AxisIndices.split(x.shape, axis)
        let count = indices.shape[axis]
        var out = [Double](repeating: 0, count: indices.values.count)
        x.scalars.withUnsafeBufferPointer { src in
            for o in 0..<outer {
                for i in 0..<count {
                    let base = (o * count + i) * inner
                    for r in 0..<inner { out[base + r] = src[(o * extent + indices.values[base + r]) * inner + r] }
                }
            }
        }
        return Tensor(shape: indices.shape, scalars: out, trace: nil)
    }
    /// `ẏ = gather(ẋ)`.
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { self(t) }
    /// `x̄ = scatterAdd(ȳ)` into `x`'s shape.
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor {
        ScatterAdd(axis: axis, indices: indices, targetShape: x.shape)(g)
    }
    /// `x.gathering(<indices literal>, alongAxis: …)`.
    public func swiftSource(_ x: String) -> String { "\(x).gathering(\(indices.swiftLiteral), alongAxis: \(axis))" }
}

/// The primitive behind `scatterAdding(_:alongAxis:into:)`. Linear in its input: `ẏ = scatterAdd(ẋ)`,
/// `x̄ = gather(ȳ)`.
public struct ScatterAdd: UnaryPrimitive {
    /// The (non-negative) axis scattered along.
    public var axis: Int
    /// The constant indices (shape = the input's shape).
    public var indices: AxisIndices
    /// The output's shape.
    public var targetShape: [Int]

    /// The scatter-add of `indices` along `axis` into zeros of `targetShape` (checked by
    /// `scatterAdding(_:alongAxis:into:)`).
    public init(axis: Int, indices: AxisIndices, targetShape: [Int]) {
        self.axis = axis
        self.indices = indices
        self.targetShape = targetShape
    }

    /// `"scatterAdd"`.
    public var name: String { "scatterAdd" }
    /// `targetShape`.
    public func outputShape(_ shape: [Int]) -> [Int] { targetShape }
    /// `out[o, indices[o, i, r], r] += x[o, i, r]` from zeros.
    public func value(_ x: Tensor) -> Tensor {
        let (outer, extent, inner) = AxisIndices.split(targetShape, axis)
        let count = indices.shape[axis]
        var out = [Double](repeating: 0, count: targetShape.reduce(1, *))
        x.scalars.withUnsafeBufferPointer { src in
            for o in 0..<outer {
                for i in 0..<count {
                    let base = (o * count + i) * inner
                    for r in 0..<inner { out[(o * extent + indices.values[base + r]) * inner + r] += src[base + r] }
                }
            }
        }
        return Tensor(shape: targetShape, scalars: out, trace: nil)
    }
    /// `ẏ = scatterAdd(ẋ)`.
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { self(t) }
    /// `x̄ = gather(ȳ)`.
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { Gather(axis: axis, indices: indices)(g) }
    /// `x.scatterAdding(<indices literal>, alongAxis: …, into: …)`.
    public func swiftSource(_ x: String) -> String {
        "\(x).scatterAdding(\(indices.swiftLiteral), alongAxis: \(axis), into: \(targetShape))"
    }
}

/// The cross-entropy `−(1/B) Σᵦ log softmax(z_b)_{k_b}` of logits `z` `[B, C]` against class indices
/// `k_b ∈ 0..<C`: the log-softmax (stabilised by each row's maximum through `logSumExp`, so logits of
/// ±1000 stay finite) gathered at the labels. Gradient `(softmax(z) − onehot(k)) / B`.
///
/// - Precondition: logits are `[B, C]` with `B, C ≥ 1`; `B` labels, each in `0..<C`.
public func crossEntropy(logits: Tensor, classIndices: [Int]) -> Tensor {
    engineCheck(
        logits.rank == 2 && logits.count > 0 && classIndices.count == logits.shape[0],
        "\(AutoDiffError.shapeMismatch(op: "crossEntropy(logits:classIndices:)", lhs: logits.shape, rhs: [classIndices.count], reason: "logits must be [batch, classes] with one class index per row"))")
    let picked = logSoftmax(logits, alongAxis: 1)
        .gathering(AxisIndices(classIndices, shape: [classIndices.count, 1]), alongAxis: 1)
    return -picked.sum() / Double(logits.shape[0])
}

/// `crossEntropy(logits:classIndices:)` with the class indices held in a tensor of `B` whole numbers
/// (any shape with `B` elements, e.g. `[B]`).
public func crossEntropy(logits: Tensor, classIndices: Tensor) -> Tensor {
    crossEntropy(logits: logits, classIndices: AxisIndices(classIndices).values)
}
