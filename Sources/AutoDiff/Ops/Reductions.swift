import Foundation

// Sums, means and log-sum-exp, over all elements or along one axis.

extension Tensor {
    /// The sum of all elements, as a scalar. JVP `Σ t`; VJP: the adjoint broadcast to `shape`.
    public func sum() -> Tensor { sum(toShape: []) }

    /// The mean of all elements, as a scalar.
    ///
    /// - Precondition: the tensor is not empty.
    public func mean() -> Tensor {
        engineCheck(count > 0, "\(AutoDiffError.emptyTensor(op: "mean() of shape \(shape)"))")
        return sum() / Double(count)
    }

    /// The sum along `axis` (negative counts from the end); the axis is removed from the shape.
    /// JVP: the same sum of the tangent; VJP: the adjoint repeated along `axis`.
    ///
    /// - Precondition: `axis` is an axis of the tensor.
    public func sum(alongAxis axis: Int) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "sum(alongAxis:)"))
        let kept = shape.enumerated().map { $0.offset == a ? 1 : $0.element }
        var reduced = shape
        reduced.remove(at: a)
        return sum(toShape: kept).reshaped(to: reduced)
    }

    /// The mean along `axis`; the axis is removed from the shape.
    ///
    /// - Precondition: `axis` is an axis of the tensor with a non-zero extent.
    public func mean(alongAxis axis: Int) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "mean(alongAxis:)"))
        engineCheck(shape[a] > 0, "\(AutoDiffError.emptyTensor(op: "mean(alongAxis: \(axis))"))")
        return sum(alongAxis: a) / Double(shape[a])
    }

    /// The same tensor with an axis of extent 1 inserted at `axis` (a reshape).
    public func expandingShape(at axis: Int) -> Tensor {
        engineCheck(axis >= 0 && axis <= rank, "expandingShape(at:): axis \(axis) is out of range for shape \(shape)")
        var s = shape
        s.insert(1, at: axis)
        return reshaped(to: s)
    }

    /// `log Σ exp(x)` over all elements, computed as `m + log Σ exp(x − m)` with `m = max x` so it
    /// neither overflows nor underflows. Derivative: `softmax(x) = exp(x − y)`.
    ///
    /// - Precondition: the tensor is not empty.
    public func logSumExp() -> Tensor {
        engineCheck(count > 0, "\(AutoDiffError.emptyTensor(op: "logSumExp() of shape \(shape)"))")
        return LogSumExp(axis: nil)(self)
    }

    /// `log Σ exp(x)` along `axis` (removed from the shape), stabilised by the maximum of each slice.
    /// Derivative: the softmax of each slice.
    ///
    /// - Precondition: `axis` is an axis with a non-zero extent.
    public func logSumExp(alongAxis axis: Int) -> Tensor {
        let a = require(try Shapes.normalize(axis: axis, of: shape, op: "logSumExp(alongAxis:)"))
        engineCheck(shape[a] > 0, "\(AutoDiffError.emptyTensor(op: "logSumExp(alongAxis: \(axis))"))")
        return LogSumExp(axis: a)(self)
    }

    /// `m + log Σ exp(v − m)` with `m = max v` (`-∞` for all `-∞`).
    static func stableLogSumExp(_ v: ArraySlice<Double>) -> Double {
        guard let m = v.max(), m.isFinite else { return v.max() ?? -.infinity }
        var s = 0.0
        for z in v { s += Foundation.exp(z - m) }
        return m + Foundation.log(s)
    }

    static func logSumExpKernel(_ x: Tensor, axis: Int) -> Tensor {
        let outer = x.shape[..<axis].reduce(1, *), n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        var reduced = x.shape
        reduced.remove(at: axis)
        var out = [Double](repeating: 0, count: outer * inner)
        var slice = [Double](repeating: 0, count: n)
        for o in 0..<outer {
            for i in 0..<inner {
                for k in 0..<n { slice[k] = x.scalars[(o * n + k) * inner + i] }
                out[o * inner + i] = stableLogSumExp(slice[...])
            }
        }
        return Tensor(shape: reduced, scalars: out, trace: nil)
    }
}

/// The primitive behind `logSumExp()` (`axis == nil`: over all elements) and
/// `logSumExp(alongAxis:)`: with `p = exp(x − y)` (the softmax, `y` repeated along the axis),
/// `ẏ = Σ p ẋ` and `x̄ = p ȳ`.
public struct LogSumExp: UnaryPrimitive {
    /// The reduced (non-negative) axis, or `nil` for all elements.
    public var axis: Int?
    public var name: String { "logSumExp" }
    /// Batching: along `axis + 1`, or (over all elements) along the flattened row of each batch element.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        let x = inputs[0]
        guard let axis else { return LogSumExp(axis: 1)(x.reshaped(to: [batchSize, x.count / batchSize])) }
        return LogSumExp(axis: axis + 1)(x)
    }
    public func outputShape(_ x: [Int]) -> [Int] {
        guard let axis else { return [] }
        var shape = x
        shape.remove(at: axis)
        return shape
    }
    public func value(_ x: Tensor) -> Tensor {
        guard let axis else { return Tensor(Tensor.stableLogSumExp(x.scalars[...])) }
        return Tensor.logSumExpKernel(x, axis: axis)
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor {
        guard let axis else { return (t * exp(x - y)).sum() }
        return (t * exp(x - y.expandingShape(at: axis))).sum(alongAxis: axis)
    }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor {
        guard let axis else { return g * exp(x - y) }
        return g.expandingShape(at: axis) * exp(x - y.expandingShape(at: axis))
    }
    public func swiftSource(_ x: String) -> String {
        axis.map { "\(x).logSumExp(alongAxis: \($0))" } ?? "\(x).logSumExp()"
    }
}
