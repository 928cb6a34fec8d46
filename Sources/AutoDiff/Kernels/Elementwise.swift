/// Raw loops over contiguous storage. They see constant tensors only (no traces) and return constants.
///
/// They stay on one core: split across cores, the element closure `f` is no longer inlined into the loop
/// (measured: Rosenbrock at n = 10⁵ went from 0.42 to 1.26 ms).
enum Elementwise {
    /// `f` applied to every element.
    @inline(__always)
    static func map(_ x: Tensor, _ f: (Double) -> Double) -> Tensor {
        let n = x.count
        // A one-element literal allocates through the specialised array entry point, not the generic one.
        if n == 1 { return Tensor(shape: x.shape, scalars: [f(x.scalars[0])], trace: nil) }
        let out = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
            x.scalars.withUnsafeBufferPointer { src in
                for i in 0..<n { buffer[i] = f(src[i]) }
            }
            initialized = n
        }
        return Tensor(shape: x.shape, scalars: out, trace: nil)
    }

    /// `kernel(x, out)` writing every element of a new tensor of `x`'s shape (a kernel that processes
    /// several elements at a time).
    static func map(
        _ x: Tensor, kernel: (UnsafeBufferPointer<Double>, UnsafeMutablePointer<Double>) -> Void
    ) -> Tensor {
        let n = x.count
        if n == 1 {
            var result = 0.0
            x.scalars.withUnsafeBufferPointer { src in kernel(src, &result) }
            return Tensor(shape: x.shape, scalars: [result], trace: nil)
        }
        let out = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
            x.scalars.withUnsafeBufferPointer { src in if n > 0 { kernel(src, buffer.baseAddress!) } }
            initialized = n
        }
        return Tensor(shape: x.shape, scalars: out, trace: nil)
    }

    /// `f` applied element-wise to `a` and `b` after broadcasting them to a common shape.
    ///
    /// Fast paths: equal shapes, a one-element operand, and a trailing-axes operand (a row); any other
    /// NumPy-compatible pair is broadcast explicitly first. The four arithmetic ops (`op` "+", "-", "*",
    /// "/") with more than one result element run as C kernels at the CPU's width (`ArithmeticKernel`);
    /// they give the same bits as `f`.
    @inline(__always)
    static func zip(_ a: Tensor, _ b: Tensor, op: String, _ f: (Double, Double) -> Double) -> Tensor {
        if a.count > 1 || b.count > 1, let kernel = ArithmeticKernel(op) { return zip(a, b, op: op, kernel: kernel) }
        if a.shape == b.shape { return zipSameShape(a.scalars, b.scalars, shape: a.shape, f) }
        let shape = require(try Shapes.broadcast(a.shape, b.shape, op: op))
        if b.count == 1 && shape == a.shape {
            let s = b.scalars[0]
            return map(a) { f($0, s) }
        }
        if a.count == 1 && shape == b.shape {
            let s = a.scalars[0]
            return map(b) { f(s, $0) }
        }
        if shape == a.shape && a.shape.hasSuffix(b.shape) {
            return zipRows(a.scalars, b.scalars, shape: shape) { f($0, $1) }
        }
        if shape == b.shape && b.shape.hasSuffix(a.shape) {
            return zipRows(b.scalars, a.scalars, shape: shape) { f($1, $0) }
        }
        let ea = broadcast(a, to: shape), eb = broadcast(b, to: shape)
        return zipSameShape(ea.scalars, eb.scalars, shape: shape, f)
    }

    @inline(__always)
    private static func zipSameShape(
        _ a: [Double], _ b: [Double], shape: [Int], _ f: (Double, Double) -> Double
    ) -> Tensor {
        let n = a.count
        if n == 1 { return Tensor(shape: shape, scalars: [f(a[0], b[0])], trace: nil) }
        let out = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    for i in 0..<n { buffer[i] = f(pa[i], pb[i]) }
                }
            }
            initialized = n
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }

    /// `f(big[i], row[i mod row.count])`.
    @inline(__always)
    private static func zipRows(
        _ big: [Double], _ row: [Double], shape: [Int], _ f: (Double, Double) -> Double
    ) -> Tensor {
        let n = big.count, r = row.count
        let out = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
            big.withUnsafeBufferPointer { pa in
                row.withUnsafeBufferPointer { pr in
                    var start = 0
                    while start < n {
                        for j in 0..<r { buffer[start + j] = f(pa[start + j], pr[j]) }
                        start += r
                    }
                }
            }
            initialized = n
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }

    /// `x` repeated along new leading axes and along its extent-1 axes to fill `shape`.
    static func broadcast(_ x: Tensor, to shape: [Int]) -> Tensor {
        if x.shape == shape { return x.detached }
        let total = shape.reduce(1, *)
        if x.count == 1 { return Tensor(shape: shape, scalars: Array(repeating: x.scalars[0], count: total), trace: nil) }
        var out = [Double](repeating: 0, count: total)
        x.scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if !broadcastRows(src, to: dst.baseAddress!, total, shape, x.shape) {
                    let strides = Shapes.broadcastStrides(of: x.shape, to: shape)
                    forEachIndex(shape: shape, strides: strides) { flat, source in dst[flat] = src[source] }
                }
            }
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }

    /// `Broadcast.evaluate`: the input repeated into the output buffer when it is one element or a row
    /// of the trailing axes (a copy per row), else `fallback`.
    static func broadcast(_ buffers: PrimitiveBuffers, fallback: (PrimitiveBuffers) -> Void) {
        let x = buffers.input(0), n = buffers.outputCount
        if x.count == 1 { return buffers.output.update(repeating: x[0], count: n) }
        if !broadcastRows(x, to: buffers.output, n, buffers.outputShape, buffers.inputShapes[0]) { fallback(buffers) }
    }

    /// Copies `x` (of `xShape`) to every row of `out` (`total` elements of `shape`) when `xShape`,
    /// without its leading ones, is a suffix of `shape`, or each element of `x` along the trailing axes
    /// when `x` is a column of `shape`; `false` (nothing written) otherwise.
    private static func broadcastRows(
        _ x: UnsafeBufferPointer<Double>, to out: UnsafeMutablePointer<Double>, _ total: Int, _ shape: [Int], _ xShape: [Int]
    ) -> Bool {
        guard x.count > 0, let source = x.baseAddress else { return x.count == 0 && total == 0 }
        if shape.hasSuffix(xShape, ignoringLeadingOnes: true) {
            var start = 0
            while start < total {
                (out + start).update(from: source, count: x.count)
                start += x.count
            }
            return true
        }
        // A column: each element repeated along the trailing axes where x has extent 1.
        guard let inner = trailingOnesExtent(of: xShape, in: shape) else { return false }
        for o in 0..<x.count { (out + o * inner).update(repeating: source[o], count: inner) }
        return true
    }

    /// When `reduced` equals `shape` on its leading axes and is 1 on all the others (a column of
    /// `shape`), the element count of those trailing axes of `shape`; nil otherwise.
    private static func trailingOnesExtent(of reduced: [Int], in shape: [Int]) -> Int? {
        guard reduced.count == shape.count else { return nil }
        var kept = 0
        while kept < shape.count && reduced[kept] == shape[kept] { kept += 1 }
        var axis = kept
        while axis < shape.count {
            if reduced[axis] != 1 { return nil }
            axis += 1
        }
        return elementCount(shape, axes: kept..<shape.count)
    }

    /// The sum of `x` over the axes along which `shape` was broadcast to `x.shape`: the adjoint of
    /// `broadcast(_:to:)`.
    static func sumToShape(_ x: Tensor, _ shape: [Int]) -> Tensor {
        if x.shape == shape { return x.detached }
        let total = shape.reduce(1, *)
        var out = [Double](repeating: 0, count: total)
        x.scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if !sumRows(src, into: dst.baseAddress!, total, shape, x.shape) {
                    let strides = Shapes.broadcastStrides(of: shape, to: x.shape)
                    forEachIndex(shape: x.shape, strides: strides) { flat, target in dst[target] += src[flat] }
                }
            }
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }

    /// `SumToShape.evaluate`: the total, or the sum of the rows, written into the output buffer; any
    /// other reduction through `fallback`.
    static func sumToShape(_ buffers: PrimitiveBuffers, fallback: (PrimitiveBuffers) -> Void) {
        let n = buffers.outputCount
        buffers.output.update(repeating: 0, count: n)
        if !sumRows(buffers.input(0), into: buffers.output, n, buffers.outputShape, buffers.inputShapes[0]) { fallback(buffers) }
    }

    /// Adds into the zeroed `out` (`total` elements of `shape`) the sum of all of `x` (when `total` is 1),
    /// of its rows (when `shape` without its leading ones is a suffix of `xShape`, in row order) or of
    /// each column run (when `shape` is a column of `xShape`, in element order: the order of the general
    /// strided loop); `false` (nothing written) for any other reduction.
    private static func sumRows(
        _ x: UnsafeBufferPointer<Double>, into out: UnsafeMutablePointer<Double>, _ total: Int, _ shape: [Int], _ xShape: [Int]
    ) -> Bool {
        guard let source = x.baseAddress else { return true }
        if total == 1 {
            out[0] = MatmulKernel.sum(x.count, source)
            return true
        }
        if xShape.hasSuffix(shape, ignoringLeadingOnes: true) {
            var start = 0
            while start < x.count {
                for j in 0..<total { out[j] += source[start + j] }
                start += total
            }
            return true
        }
        // A column: each run of trailing elements summed in order.
        guard let inner = trailingOnesExtent(of: shape, in: xShape) else { return false }
        for o in 0..<total { for j in 0..<inner { out[o] += source[o * inner + j] } }
        return true
    }

    /// `f` applied to every element of the input into the output buffer (a one-input element-wise
    /// primitive's `evaluate`).
    static func map(_ buffers: PrimitiveBuffers, kernel: (UnsafeBufferPointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        let x = buffers.input(0)
        if x.count > 0 { kernel(x, buffers.output) }
    }

    /// Visits every multi-index of `shape` in row-major order, passing its flat index and the offset
    /// `Σ index[k] * strides[k]`.
    static func forEachIndex(shape: [Int], strides: [Int], _ body: (Int, Int) -> Void) {
        let total = shape.reduce(1, *)
        guard total > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        var offset = 0
        for flat in 0..<total {
            body(flat, offset)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < shape[axis] { break }
                offset -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Adds `other` into `x` element by element (the C `axpy` with coefficient 1, at the CPU's width: the
    /// same bits as `x[i] + other[i]`); both constants of one shape.
    static func addInPlace(_ x: inout Tensor, _ other: Tensor) {
        let n = x.count
        guard n > 0 else { return }
        other.scalars.withUnsafeBufferPointer { src in
            x.scalars.withUnsafeMutableBufferPointer { dst in MatmulKernel.axpy(n, 1, src.baseAddress!, dst.baseAddress!) }
        }
    }
}

extension Array where Element == Int {
    /// Whether `suffix` (without its leading ones when `ignoringLeadingOnes`) equals the trailing
    /// elements of `self`; compared by a plain loop, without a copy.
    func hasSuffix(_ suffix: [Int], ignoringLeadingOnes: Bool = false) -> Bool {
        var first = 0
        while ignoringLeadingOnes && first < suffix.count && suffix[first] == 1 { first += 1 }
        let length = suffix.count - first
        guard length <= count else { return false }
        var k = 0
        while k < length {
            if self[count - length + k] != suffix[first + k] { return false }
            k += 1
        }
        return true
    }
}
