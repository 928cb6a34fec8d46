// Reshape, slicing, indexing and concatenation. All are linear, so their JVPs repeat the op on the
// tangent and their VJPs are the adjoint layout change (reshape back, embed into zeros, slice).

extension Tensor {
    /// The same elements arranged as `shape` (row-major order kept; storage shared until written).
    ///
    /// - Precondition: `shape` holds as many elements as the tensor; the message names both shapes.
    public func reshaped(to shape: [Int]) -> Tensor {
        if shape == self.shape { return self }
        require(try Shapes.reshape(self.shape, to: shape))
        return Reshape(shape: shape)(self)
    }

    /// The elements `range` along `axis`; the axis keeps its place with extent `range.count`.
    /// VJP: the adjoint embedded into zeros of the input's shape.
    ///
    /// - Precondition: `axis` is an axis and `range` lies within its extent.
    public func slice(alongAxis axis: Int, _ range: Range<Int>) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "slice(alongAxis:_:)"))
        engineCheck(
            range.lowerBound >= 0 && range.upperBound <= shape[a],
            "slice(alongAxis: \(axis), \(range)): the range is outside 0..<\(shape[a]) for shape \(shape)")
        if range == 0..<shape[a] { return self }
        return Slice(axis: a, range: range)(self)
    }

    /// `self` placed at offset `start` along `axis` inside zeros of `shape`: the adjoint of `slice`.
    /// VJP: the slice of the adjoint at the same place.
    ///
    /// - Precondition: `shape` equals the tensor's shape except along `axis`, where it fits.
    public func embedded(in shape: [Int], alongAxis axis: Int, at start: Int) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "embedded(in:alongAxis:at:)"))
        let range = start..<(start + (rank == shape.count ? self.shape[a] : -1))
        engineCheck(
            rank == shape.count && start >= 0 && range.upperBound <= shape[a]
                && (0..<rank).allSatisfy { $0 == a || self.shape[$0] == shape[$0] },
            "\(AutoDiffError.shapeMismatch(op: "embedded(in:alongAxis: \(axis), at: \(start))", lhs: self.shape, rhs: shape, reason: "the first does not fit inside the second at that place"))")
        if self.shape == shape { return self }
        return Embed(shape: shape, axis: a, start: start)(self)
    }

    /// The sub-tensor at `index` along the first axis (that axis removed): row `index` of a matrix,
    /// element `index` of a vector (as a scalar).
    public subscript(index: Int) -> Tensor {
        engineCheck(rank >= 1, "Tensor[\(index)]: a scalar has no axis to index")
        engineCheck(index >= 0 && index < shape[0], "Tensor[\(index)]: index out of range 0..<\(shape[0]) for shape \(shape)")
        return slice(alongAxis: 0, index..<(index + 1)).reshaped(to: Array(shape.dropFirst()))
    }

    /// The sub-tensor of the entries `range` along the first axis.
    public subscript(range: Range<Int>) -> Tensor { slice(alongAxis: 0, range) }
}

/// The tensors joined along `axis`; all other extents must agree.
/// VJP: input `i` receives its slice of the adjoint; JVP: each tangent embedded at its place.
///
/// - Precondition: at least one tensor, equal ranks, and equal extents off `axis`; the message names
///   the first offending shape.
public func concatenate(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
    engineCheck(!tensors.isEmpty, "\(AutoDiffError.invalidArgument(op: "concatenate", reason: "no tensors given"))")
    let first = tensors[0].shape
    let a = require(try Shapes.normalize(axis: axis, of: first, op: "concatenate"))
    for t in tensors {
        engineCheck(
            t.rank == first.count && (0..<first.count).allSatisfy { $0 == a || t.shape[$0] == first[$0] },
            "\(AutoDiffError.shapeMismatch(op: "concatenate(alongAxis: \(axis))", lhs: first, rhs: t.shape, reason: "extents off the concatenation axis must agree"))")
    }
    if tensors.count == 1 { return tensors[0] }
    var offsets = [0]
    for t in tensors { offsets.append(offsets.last! + t.shape[a]) }
    var shape = first
    shape[a] = offsets.last!
    return Concatenate(axis: a, offsets: offsets, shape: shape).apply(tensors)
}

/// The primitive behind `reshaped(to:)`: `ẏ = reshape(ẋ)`, `x̄ = reshape(ȳ, to: x.shape)`.
public struct Reshape: UnaryPrimitive {
    /// The new shape.
    public var shape: [Int]
    public var name: String { "reshape" }
    /// Batching: the same reshape behind the batch axis.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { Reshape(shape: [batchSize] + shape)(inputs[0]) }
    public func outputShape(_ x: [Int]) -> [Int] { shape }
    public func value(_ x: Tensor) -> Tensor { Tensor(shape: shape, scalars: x.scalars, trace: nil) }
    /// A compiled program gives the output the input's buffer.
    public func aliasOffset(_ inputShapes: [[Int]]) -> Int? { 0 }
    public func evaluate(_ buffers: PrimitiveBuffers) {
        let x = buffers.input(0)
        if let base = x.baseAddress { buffers.output.update(from: base, count: x.count) }
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t.reshaped(to: shape) }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g.reshaped(to: x.shape) }
    public func swiftSource(_ x: String) -> String { "\(x).reshaped(to: \(shape))" }
}

/// The primitive behind `slice(alongAxis:_:)`: `ẏ = slice(ẋ)`, `x̄ = ȳ` embedded into zeros of x's shape.
public struct Slice: UnaryPrimitive {
    /// The (non-negative) axis.
    public var axis: Int
    /// The kept positions along `axis`.
    public var range: Range<Int>
    public var name: String { "slice" }
    /// Batching: the same slice one axis further in.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { Slice(axis: axis + 1, range: range)(inputs[0]) }
    public func outputShape(_ x: [Int]) -> [Int] {
        var shape = x
        shape[axis] = range.count
        return shape
    }
    public func value(_ x: Tensor) -> Tensor { ShapeKernel.slice(x, axis: axis, range) }
    /// A slice is contiguous when every axis before `axis` has extent 1: a compiled program then points
    /// into the input at the slice's first element.
    public func aliasOffset(_ inputShapes: [[Int]]) -> Int? {
        let shape = inputShapes[0]
        guard elementCount(shape, axes: 0..<axis) == 1 else { return nil }
        return range.lowerBound * elementCount(shape, axes: (axis + 1)..<shape.count)
    }
    public func evaluate(_ buffers: PrimitiveBuffers) {
        ShapeKernel.copy(buffers.input(0), buffers.inputShapes[0], axis: axis, range, into: buffers.output, at: 0, of: buffers.outputShape[axis])
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t.slice(alongAxis: axis, range) }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor {
        g.embedded(in: x.shape, alongAxis: axis, at: range.lowerBound)
    }
    public func swiftSource(_ x: String) -> String { "\(x).slice(alongAxis: \(axis), \(range))" }
}

/// The primitive behind `embedded(in:alongAxis:at:)`: `ẏ = embed(ẋ)`, `x̄ = ȳ` sliced at the same place.
public struct Embed: UnaryPrimitive {
    /// The output shape.
    public var shape: [Int]
    /// The (non-negative) axis.
    public var axis: Int
    /// The offset of the input along `axis`.
    public var start: Int
    public var name: String { "embed" }
    /// Batching: the same embedding one axis further in.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Embed(shape: [batchSize] + shape, axis: axis + 1, start: start)(inputs[0])
    }
    public func outputShape(_ x: [Int]) -> [Int] { shape }
    public func value(_ x: Tensor) -> Tensor { ShapeKernel.embed(x, in: shape, axis: axis, at: start) }
    /// Zeros around the input's place and the input copied into it (each output element written once).
    public func evaluate(_ buffers: PrimitiveBuffers) {
        let x = buffers.inputShapes[0], inner = elementCount(shape, axes: (axis + 1)..<shape.count)
        let before = start * inner, after = (shape[axis] - start - x[axis]) * inner, width = shape[axis] * inner
        for o in 0..<elementCount(shape, axes: 0..<axis) {
            (buffers.output + o * width).update(repeating: 0, count: before)
            (buffers.output + (o + 1) * width - after).update(repeating: 0, count: after)
        }
        ShapeKernel.copy(buffers.input(0), x, axis: axis, 0..<x[axis], into: buffers.output, at: start, of: shape[axis])
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t.embedded(in: shape, alongAxis: axis, at: start) }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor {
        g.slice(alongAxis: axis, start..<(start + x.shape[axis]))
    }
    public func swiftSource(_ x: String) -> String {
        "\(x).embedded(in: \(shape), alongAxis: \(axis), at: \(start))"
    }
}

/// The primitive behind `concatenate(_:alongAxis:)`: input i occupies `offsets[i]..<offsets[i + 1]`
/// along `axis`; its tangent is embedded there, its adjoint is that slice of the output's adjoint.
public struct Concatenate: Primitive {
    /// The (non-negative) axis.
    public var axis: Int
    /// Where each input starts along `axis`, and the total extent last.
    public var offsets: [Int]
    /// The output shape.
    public var shape: [Int]
    public var name: String { "concatenate" }
    /// Batching: every input batched (an unbatched one repeated along the batch axis), concatenated
    /// one axis further in.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        let rows = inputs.indices.map { isBatched[$0] ? inputs[$0] : repeatedAlongBatch(inputs[$0], batchSize: batchSize) }
        return Concatenate(axis: axis + 1, offsets: offsets, shape: [batchSize] + shape).apply(rows)
    }
    public func outputShape(_ inputShapes: [[Int]]) -> [Int] { shape }
    public func value(_ inputs: [Tensor]) -> Tensor {
        var out = Tensor(zeros: shape)
        for (i, p) in inputs.enumerated() { ShapeKernel.copy(p, into: &out, axis: axis, at: offsets[i]) }
        return out
    }
    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        tangent.embedded(in: shape, alongAxis: axis, at: offsets[input])
    }
    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        adjoint.slice(alongAxis: axis, offsets[input]..<offsets[input + 1])
    }
    public func swiftSource(_ arguments: [String]) -> String {
        "concatenate([\(arguments.joined(separator: ", "))], alongAxis: \(axis))"
    }
}

/// Copy loops for the layout ops, viewing a tensor as `[outer, extent along axis, inner]`.
enum ShapeKernel {
    static func slice(_ x: Tensor, axis: Int, _ range: Range<Int>) -> Tensor {
        var shape = x.shape
        shape[axis] = range.count
        let count = shape.reduce(1, *)
        let out = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            x.scalars.withUnsafeBufferPointer { src in
                if let dst = buffer.baseAddress { copy(src, x.shape, axis: axis, range, into: dst, at: 0, of: range.count) }
            }
            initialized = count
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }

    /// Copies the positions `range` along `axis` of `source` (of `shape`) to the positions from `start`
    /// along `axis` of `out`, whose extent there is `extent` (its other extents are `shape`'s).
    static func copy(
        _ source: UnsafeBufferPointer<Double>, _ shape: [Int], axis: Int, _ range: Range<Int>,
        into out: UnsafeMutablePointer<Double>, at start: Int, of extent: Int
    ) {
        guard let base = source.baseAddress else { return }
        let outer = elementCount(shape, axes: 0..<axis), n = shape[axis]
        let inner = elementCount(shape, axes: (axis + 1)..<shape.count), width = range.count * inner
        for o in 0..<outer {
            (out + (o * extent + start) * inner).update(from: base + (o * n + range.lowerBound) * inner, count: width)
        }
    }

    static func embed(_ x: Tensor, in shape: [Int], axis: Int, at start: Int) -> Tensor {
        var out = Tensor(zeros: shape)
        copy(x, into: &out, axis: axis, at: start)
        return out
    }

    /// Writes `part` into `out` at offset `start` along `axis`.
    static func copy(_ part: Tensor, into out: inout Tensor, axis: Int, at start: Int) {
        let outer = out.shape[..<axis].reduce(1, *), n = out.shape[axis], inner = out.shape[(axis + 1)...].reduce(1, *)
        let width = part.shape[axis] * inner
        for o in 0..<outer {
            let dst = (o * n + start) * inner
            out.scalars.replaceSubrange(dst..<(dst + width), with: part.scalars[(o * width)..<((o + 1) * width)])
        }
    }
}
