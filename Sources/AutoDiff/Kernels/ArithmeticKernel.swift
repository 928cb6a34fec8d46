import CKernels

/// The four element-wise arithmetic operations as C kernels a full vector register at a time
/// (Sources/CKernels/KernelBody.h, `CK_ARITHMETIC`): plain IEEE operations, so the bits equal the Swift
/// closures' on every instruction set. Before, `+ − × ÷` ran as a Swift loop over a closure, at baseline
/// 128-bit SIMD. Measured (P4 MLP and Rosenbrock rows, old and new binaries alternated in one session):
/// no difference beyond the run-to-run noise; these ops are bound by memory and allocation, not by the
/// vector width. No other variant was tried.
enum ArithmeticKernel {
    case add, subtract, multiply, divide

    /// The kernel for the op spelled `op` in `Elementwise.zip`, or nil for any other op.
    @inline(__always)
    init?(_ op: String) {
        switch op {
        case "+": self = .add
        case "-": self = .subtract
        case "*": self = .multiply
        case "/": self = .divide
        default: return nil
        }
    }

    /// `out[i] = a[i·aStep] ∘ b[i·bStep]` for `i < n`, each step 0 (a scalar) or 1.
    @inline(__always)
    func callAsFunction(
        _ n: Int, _ a: UnsafePointer<Double>, _ aStep: Int, _ b: UnsafePointer<Double>, _ bStep: Int,
        _ out: UnsafeMutablePointer<Double>
    ) {
        switch self {
        case .add: ckernels_add(n, a, aStep, b, bStep, out)
        case .subtract: ckernels_subtract(n, a, aStep, b, bStep, out)
        case .multiply: ckernels_multiply(n, a, aStep, b, bStep, out)
        case .divide: ckernels_divide(n, a, aStep, b, bStep, out)
        }
    }
}

extension Elementwise {
    /// `a ∘ b` broadcast to a common shape by the C kernel: each operand enters whole (its count is the
    /// result's), as a scalar, or as a row repeated along the leading axes (one kernel call per row); any
    /// other operand is broadcast explicitly first, and so is `a` when both are rows.
    static func zip(_ a: Tensor, _ b: Tensor, op: String, kernel: ArithmeticKernel) -> Tensor {
        let shape = a.shape == b.shape ? a.shape : require(try Shapes.broadcast(a.shape, b.shape, op: op))
        let n = shape.reduce(1, *)
        if n == 0 { return Tensor(shape: shape, scalars: [], trace: nil) }
        let left = zipsDirectly(a.count, a.shape, b.count, b.shape, shape) ? a : broadcast(a, to: shape)
        let right = zipsDirectly(b.count, b.shape, 1, [], shape) ? b : broadcast(b, to: shape)
        let out = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
            left.scalars.withUnsafeBufferPointer { pa in
                right.scalars.withUnsafeBufferPointer { pb in
                    zip(kernel, pa.baseAddress!, left.count, pb.baseAddress!, right.count, buffer.baseAddress!, n)
                }
            }
            initialized = n
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }

    /// The buffer-level `a ∘ b` of a binary arithmetic primitive (`Primitive.evaluate(_:)`): the C
    /// kernel straight into the output when both operands enter directly, else run by run
    /// (`zipByRuns`, an operand broadcast along a middle axis: a column, a batch of rows).
    static func zip(_ kernel: ArithmeticKernel, _ buffers: PrimitiveBuffers) {
        let n = buffers.outputCount, aCount = buffers.inputCount(0), bCount = buffers.inputCount(1)
        guard n > 0 else { return }
        guard zipsDirectly(aCount, buffers.inputShapes[0], bCount, buffers.inputShapes[1], buffers.outputShape),
            zipsDirectly(bCount, buffers.inputShapes[1], 1, [], buffers.outputShape)
        else { return zipByRuns(kernel, buffers) }
        zip(kernel, buffers.inputs[0], aCount, buffers.inputs[1], bCount, buffers.output, n)
    }

    /// `a ∘ b` for any broadcast: one kernel call per run along the last axis of extent above 1, each
    /// operand stepping 1 along it (or 0 where it is broadcast), the start of each run found by walking
    /// the other axes with each operand's broadcast strides (0 along its broadcast axes).
    private static func zipByRuns(_ kernel: ArithmeticKernel, _ buffers: PrimitiveBuffers) {
        let shape = buffers.outputShape
        let aStrides = Shapes.broadcastStrides(of: buffers.inputShapes[0], to: shape)
        let bStrides = Shapes.broadcastStrides(of: buffers.inputShapes[1], to: shape)
        let axes = shape.indices.filter { shape[$0] > 1 }
        guard let last = axes.last else { return kernel(1, buffers.inputs[0], 0, buffers.inputs[1], 0, buffers.output) }
        let outer = axes.dropLast(), run = shape[last]
        var index = [Int](repeating: 0, count: shape.count)
        var start = 0, aOffset = 0, bOffset = 0
        while start < buffers.outputCount {
            kernel(run, buffers.inputs[0] + aOffset, aStrides[last], buffers.inputs[1] + bOffset, bStrides[last], buffers.output + start)
            start += run
            for axis in outer.reversed() {
                index[axis] += 1
                aOffset += aStrides[axis]
                bOffset += bStrides[axis]
                if index[axis] < shape[axis] { break }
                aOffset -= aStrides[axis] * shape[axis]
                bOffset -= bStrides[axis] * shape[axis]
                index[axis] = 0
            }
        }
    }

    /// Whether an operand of `count` elements and `shape` enters the kernel without an explicit
    /// broadcast to `result`: whole, a scalar, or a row (trailing axes) — unless the other operand is a
    /// row too (then this one, the first, is broadcast).
    private static func zipsDirectly(_ count: Int, _ shape: [Int], _ otherCount: Int, _ otherShape: [Int], _ result: [Int]) -> Bool {
        let n = elementCount(result)
        func isRow(_ count: Int, _ shape: [Int]) -> Bool { count > 1 && count < n && result.hasSuffix(shape) }
        return (count == n || count == 1 || isRow(count, shape)) && !(isRow(count, shape) && isRow(otherCount, otherShape))
    }

    /// `out[i] = a ∘ b` over `n` elements, each operand of `n` elements, one, or a row of the trailing axes.
    private static func zip(
        _ kernel: ArithmeticKernel, _ a: UnsafePointer<Double>, _ aCount: Int, _ b: UnsafePointer<Double>, _ bCount: Int,
        _ out: UnsafeMutablePointer<Double>, _ n: Int
    ) {
        let aStep = aCount == 1 ? 0 : 1, bStep = bCount == 1 ? 0 : 1
        let rowLength = aCount > 1 && aCount < n ? aCount : (bCount > 1 && bCount < n ? bCount : n)
        var start = 0
        while start < n {
            kernel(rowLength, a + (aCount == n ? start : 0), aStep, b + (bCount == n ? start : 0), bStep, out + start)
            start += rowLength
        }
    }
}
