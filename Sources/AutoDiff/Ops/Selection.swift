// Selection by a constant mask (`select`, NumPy's `where`) and the maximum / minimum / argmax along an
// axis. Masks and argmax indices are constants: the derivative flows only through the selected values.

/// `condition ≠ 0 ? a : b` element-wise, with NumPy broadcasting of all three (NumPy's / PyTorch's
/// `where`). The condition is a constant; `ȧ` and `ā` are masked by it, `ḃ` and `b̄` by its complement.
///
/// - Precondition: the three shapes broadcast together.
public func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    _ = require(try Shapes.broadcast(condition.shape, require(try Shapes.broadcast(a.shape, b.shape, op: "select")), op: "select"))
    return Select(mask: condition.scalars.map { $0 != 0 }, maskShape: condition.shape)(a, b)
}

/// The primitive behind `select(_:_:_:)`: `y = mask ? a : b` (broadcast), linear in `a` and `b`, so
/// `ẏ = select(mask, ȧ, 0) + select(mask, 0, ḃ)` and `ā = Σ select(mask, ȳ, 0)` (summed back to `a`'s
/// shape), `b̄ = Σ select(mask, 0, ȳ)`.
public struct Select: BinaryPrimitive {
    /// Which elements come from the first input.
    public var mask: [Bool]
    /// The mask's shape.
    public var maskShape: [Int]

    /// The selection by `mask` laid out as `maskShape`.
    ///
    /// - Precondition: `mask.count` is the product of `maskShape`.
    public init(mask: [Bool], maskShape: [Int]) {
        engineCheck(mask.count == maskShape.reduce(1, *), "Select: mask shape \(maskShape) does not hold \(mask.count) elements")
        self.mask = mask
        self.maskShape = maskShape
    }

    /// `"select"`.
    public var name: String { "select" }
    /// The broadcast of the mask's and both inputs' shapes.
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] {
        require(try Shapes.broadcast(maskShape, require(try Shapes.broadcast(a, b, op: "select")), op: "select"))
    }
    /// `mask ? a : b` element by element.
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = outputShape(a.shape, b.shape)
        let ea = Elementwise.broadcast(a, to: shape), eb = Elementwise.broadcast(b, to: shape)
        let m = Elementwise.broadcast(Tensor(shape: maskShape, scalars: mask.map { $0 ? 1 : 0 }, trace: nil), to: shape)
        let out = (0..<m.count).map { m.scalars[$0] != 0 ? ea.scalars[$0] : eb.scalars[$0] }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }
    /// `select(mask, ȧ, 0)`.
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { self(t, Tensor(zeros: y.shape)) }
    /// `select(mask, 0, ḃ)`.
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { self(Tensor(zeros: y.shape), t) }
    /// `select(mask, ȳ, 0)` summed to `a`'s shape.
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { self(g, Tensor(0)).sum(toShape: a.shape) }
    /// `select(mask, 0, ȳ)` summed to `b`'s shape.
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { self(Tensor(0), g).sum(toShape: b.shape) }
    /// `select(<mask literal>, a, b)`.
    public func swiftSource(_ a: String, _ b: String) -> String {
        "select(Tensor(shape: \(maskShape), scalars: \(mask.map { $0 ? 1.0 : 0.0 })), \(a), \(b))"
    }
}

extension Tensor {
    /// The maximum along `axis` (removed from the shape). The derivative flows to the first maximal
    /// element of each slice: `ẏ = gather(ẋ, argmax)`, `x̄ = scatterAdd(ȳ, argmax)`, with the argmax
    /// indices held constant.
    ///
    /// - Precondition: `axis` is an axis with a non-zero extent.
    public func maximum(alongAxis axis: Int) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "maximum(alongAxis:)"))
        engineCheck(shape[a] > 0, "\(AutoDiffError.emptyTensor(op: "maximum(alongAxis: \(axis))"))")
        return MaxAlongAxis(axis: a)(self)
    }

    /// The minimum along `axis` (removed from the shape): `−maximum(−x)`, so the derivative flows to the
    /// first minimal element of each slice.
    ///
    /// - Precondition: `axis` is an axis with a non-zero extent.
    public func minimum(alongAxis axis: Int) -> Tensor { -(-self).maximum(alongAxis: axis) }

    /// The index of the first maximal element (or first NaN) of each slice along `axis` (removed from the shape), as a
    /// constant tensor of whole numbers (pass it to `AxisIndices` to gather with it).
    ///
    /// - Precondition: `axis` is an axis with a non-zero extent.
    public func argmax(alongAxis axis: Int) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "argmax(alongAxis:)"))
        engineCheck(shape[a] > 0, "\(AutoDiffError.emptyTensor(op: "argmax(alongAxis: \(axis))"))")
        var reduced = shape
        reduced.remove(at: a)
        return Tensor(shape: reduced, scalars: MaxAlongAxis.argmax(self, axis: a).values.map(Double.init), trace: nil)
    }
}

/// The primitive behind `maximum(alongAxis:)`: `y = max x` per slice; `ẏ = gather(ẋ, i*)`,
/// `x̄ = scatterAdd(ȳ, i*)` with `i* = argmax x` constant.
public struct MaxAlongAxis: UnaryPrimitive {
    /// The (non-negative) axis reduced.
    public var axis: Int

    /// The maximum along `axis` (checked by `maximum(alongAxis:)`).
    public init(axis: Int) { self.axis = axis }

    /// `"max"`.
    public var name: String { "max" }
    /// Batching: the same maximum one axis further in.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { MaxAlongAxis(axis: axis + 1)(inputs[0]) }
    /// The input's shape without `axis`.
    public func outputShape(_ shape: [Int]) -> [Int] {
        var reduced = shape
        reduced.remove(at: axis)
        return reduced
    }
    /// The maximum of each slice.
    public func value(_ x: Tensor) -> Tensor {
        let indices = Self.argmax(x, axis: axis)
        return Tensor(shape: outputShape(x.shape), scalars: Gather(axis: axis, indices: indices).value(x).scalars, trace: nil)
    }
    /// `gather(ẋ, argmax x)`.
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor {
        Gather(axis: axis, indices: Self.argmax(x, axis: axis))(t).reshaped(to: y.shape)
    }
    /// `scatterAdd(ȳ, argmax x)` into `x`'s shape.
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor {
        let indices = Self.argmax(x, axis: axis)
        return ScatterAdd(axis: axis, indices: indices, targetShape: x.shape)(g.reshaped(to: indices.shape))
    }
    /// `x.maximum(alongAxis: …)`.
    public func swiftSource(_ x: String) -> String { "\(x).maximum(alongAxis: \(axis))" }

    /// The first maximal (or NaN) index of each slice along `axis`, laid out as `x`'s shape with extent 1 there.
    static func argmax(_ x: Tensor, axis: Int) -> AxisIndices {
        let (outer, extent, inner) = AxisIndices.split(x.shape, axis)
        var shape = x.shape
        shape[axis] = 1
        var out = [Int](repeating: 0, count: outer * inner)
        x.scalars.withUnsafeBufferPointer { src in
            for o in 0..<outer {
                for r in 0..<inner {
                    var best = 0, bestValue = src[o * extent * inner + r]
                    // NaN counts as the maximum, so it propagates instead of being skipped.
                    for k in 1..<Swift.max(extent, 1) where !bestValue.isNaN {
                        let v = src[(o * extent + k) * inner + r]
                        if v > bestValue || v.isNaN {
                            best = k
                            bestValue = v
                        }
                    }
                    out[o * inner + r] = best
                }
            }
        }
        return AxisIndices(out, shape: shape)
    }
}
