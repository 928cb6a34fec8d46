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
        func isRow(_ x: Tensor) -> Bool { x.count > 1 && x.count < n && shape.hasSuffix(x.shape) }
        func direct(_ x: Tensor) -> Bool { x.count == n || x.count == 1 || isRow(x) }
        let left = direct(a) && !(isRow(a) && isRow(b)) ? a : broadcast(a, to: shape)
        let right = direct(b) ? b : broadcast(b, to: shape)
        let rowLength = isRow(left) ? left.count : (isRow(right) ? right.count : n)
        let out = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
            left.scalars.withUnsafeBufferPointer { pa in
                right.scalars.withUnsafeBufferPointer { pb in
                    let aStep = left.count == 1 ? 0 : 1, bStep = right.count == 1 ? 0 : 1
                    var start = 0
                    while start < n {
                        let aOffset = left.count == n ? start : 0, bOffset = right.count == n ? start : 0
                        kernel(rowLength, pa.baseAddress! + aOffset, aStep, pb.baseAddress! + bOffset, bStep,
                               buffer.baseAddress! + start)
                        start += rowLength
                    }
                }
            }
            initialized = n
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }
}
