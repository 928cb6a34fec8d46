// Matrix products, transpose, dot and squared norm.

/// The matrix product `a · b` for matrix·matrix, matrix·vector and vector·matrix operands.
///
/// Vectors are treated as a row (left operand) or a column (right operand) and the result drops that
/// axis again, so `matmul(A, x)` of shapes `[m, k]`, `[k]` has shape `[m]`.
///
/// - Precondition: ranks are 1 or 2 (not both 1: use `dot`) and the inner extents agree; the message
///   names both shapes.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = require(try Shapes.matmul(a.shape, b.shape))
    let a2 = a.rank == 1 ? a.reshaped(to: [1, a.count]) : a
    let b2 = b.rank == 1 ? b.reshaped(to: [b.count, 1]) : b
    return matmul(a2, b2, transposeA: false, transposeB: false).reshaped(to: shape)
}

/// `op(a) · op(b)` for matrices, where `op` transposes when asked; no transposed copy is made.
///
/// With `C = op(A) op(B)` and adjoint `G`: `∂A = G op(B)ᵀ` (or its transpose `op(B) Gᵀ` when
/// `transposeA`), `∂B = op(A)ᵀ G` (or `Gᵀ op(A)` when `transposeB`); the JVP is
/// `op(Ȧ) op(B) + op(A) op(Ḃ)`.
///
/// - Precondition: both are rank 2 and the inner extents of `op(a)` and `op(b)` agree.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
    engineCheck(
        a.rank == 2 && b.rank == 2,
        "\(AutoDiffError.shapeMismatch(op: "matmul(_:_:transposeA:transposeB:)", lhs: a.shape, rhs: b.shape, reason: "both operands must be matrices"))")
    let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
    let k2 = transposeB ? b.shape[1] : b.shape[0], n = transposeB ? b.shape[0] : b.shape[1]
    engineCheck(
        k == k2,
        "\(AutoDiffError.shapeMismatch(op: "matmul(transposeA: \(transposeA), transposeB: \(transposeB))", lhs: a.shape, rhs: b.shape, reason: "inner extents \(k) and \(k2) differ"))")
    return Matmul(transposeA: transposeA, transposeB: transposeB)(a, b)
}

/// The primitive behind `matmul(_:_:transposeA:transposeB:)`: `C = op(A) op(B)`, with the transposes
/// folded into the kernel call. Rules: `Ċ = op(Ȧ) op(B) + op(A) op(Ḃ)`; `Ā = G op(B)ᵀ` (or `op(B) Gᵀ`
/// when `transposeA`), `B̄ = op(A)ᵀ G` (or `Gᵀ op(A)` when `transposeB`).
public struct Matmul: BinaryPrimitive {
    /// Whether the first operand enters transposed.
    public var transposeA: Bool
    /// Whether the second operand enters transposed.
    public var transposeB: Bool
    public var name: String { "matmul" }
    /// Batching. A batched `A` times an unbatched `B`: the `op(A_b)` stacked as the rows of one matrix,
    /// one GEMM `[B·m, k] · op(B)`. An unbatched `A` times a batched `B`: through the transpose,
    /// `(op(A) op(B_b))ᵀ = op(B_b)ᵀ op(A)ᵀ`, one GEMM `[B·n, k] · op(A)ᵀ`, each block transposed back.
    /// Both batched: the broadcast product `Σ_k op(A_b)[i, k] op(B_b)[k, j]` when one extent of the
    /// three is 1 (outer products, matrix·vector), else one product per batch element.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        let (a, b) = (inputs[0], inputs[1])
        switch (isBatched[0], isBatched[1]) {
        case (true, false):
            let rowsA = transposeA ? Batching.transposingMatrices(a) : a
            let (m, k) = (rowsA.shape[1], rowsA.shape[2]), n = transposeB ? b.shape[0] : b.shape[1]
            return Matmul(transposeA: false, transposeB: transposeB)(rowsA.reshaped(to: [batchSize * m, k]), b)
                .reshaped(to: [batchSize, m, n])
        case (false, true):
            let rowsB = transposeB ? b : Batching.transposingMatrices(b)
            let (n, k) = (rowsB.shape[1], rowsB.shape[2]), m = transposeA ? a.shape[1] : a.shape[0]
            let product = Matmul(transposeA: false, transposeB: !transposeA)(rowsB.reshaped(to: [batchSize * n, k]), a)
            return Batching.transposingMatrices(product.reshaped(to: [batchSize, n, m]))
        default:
            let opA = transposeA ? Batching.transposingMatrices(a) : a
            let opB = transposeB ? Batching.transposingMatrices(b) : b
            let (m, k, n) = (opA.shape[1], opA.shape[2], opB.shape[2])
            guard m == 1 || k == 1 || n == 1 else {
                return applyPerBatchElement(inputs, isBatched: isBatched, batchSize: batchSize)
            }
            if k == 1 { return opA * opB.reshaped(to: [batchSize, 1, n]) }
            return (opA.reshaped(to: [batchSize, m, k, 1]) * opB.reshaped(to: [batchSize, 1, k, n])).sum(alongAxis: 2)
        }
    }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] {
        [transposeA ? a[1] : a[0], transposeB ? b[0] : b[1]]
    }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = outputShape(a.shape, b.shape), count = shape[0] * shape[1]
        let out = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            a.scalars.withUnsafeBufferPointer { pa in
                b.scalars.withUnsafeBufferPointer { pb in
                    multiply(pa.baseAddress, a.shape, pb.baseAddress, b.shape, into: buffer.baseAddress)
                }
            }
            initialized = count
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }
    public func evaluate(_ buffers: PrimitiveBuffers) {
        multiply(buffers.inputs[0], buffers.inputShapes[0], buffers.inputs[1], buffers.inputShapes[1], into: buffers.output)
    }
    /// `c = op(a) op(b)` by the GEMM kernel with the transposes folded into the call (overwrites `c`); an
    /// outer product (`k = 1`, as in the VJP of a matrix-vector product) is one scaled copy of `b` per
    /// row instead (the same products `aᵢ bⱼ`, without the GEMM's packing).
    private func multiply(
        _ a: UnsafePointer<Double>?, _ aShape: [Int], _ b: UnsafePointer<Double>?, _ bShape: [Int],
        into c: UnsafeMutablePointer<Double>?
    ) {
        let m = transposeA ? aShape[1] : aShape[0], k = transposeA ? aShape[0] : aShape[1]
        let n = transposeB ? bShape[0] : bShape[1]
        guard m > 0 && n > 0, let c else { return }
        guard k > 0, let a, let b else { return c.update(repeating: 0, count: m * n) }
        if k == 1 {
            for i in 0..<m { ArithmeticKernel.multiply(n, a + i, 0, b, 1, c + i * n) }
            return
        }
        MatmulKernel.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, b: b, c: c)
    }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        matmul(t, b, transposeA: transposeA, transposeB: transposeB)
    }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        matmul(a, t, transposeA: transposeA, transposeB: transposeB)
    }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        transposeA
            ? matmul(b, g, transposeA: transposeB, transposeB: true)
            : matmul(g, b, transposeA: false, transposeB: !transposeB)
    }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        transposeB
            ? matmul(g, a, transposeA: true, transposeB: transposeA)
            : matmul(a, g, transposeA: !transposeA, transposeB: false)
    }
    public func swiftSource(_ a: String, _ b: String) -> String {
        "matmul(\(a), \(b), transposeA: \(transposeA), transposeB: \(transposeB))"
    }
}

/// The inner product `Σ aᵢ bᵢ` of two tensors of one shape, as a scalar.
///
/// - Precondition: equal shapes.
public func dot(_ a: Tensor, _ b: Tensor) -> Tensor {
    engineCheck(
        a.shape == b.shape,
        "\(AutoDiffError.shapeMismatch(op: "dot", lhs: a.shape, rhs: b.shape, reason: "dot needs equal shapes"))")
    if a.rank == 1 { return matmul(a.reshaped(to: [1, a.count]), b.reshaped(to: [b.count, 1])).reshaped(to: []) }
    return (a * b).sum()
}

extension Tensor {
    /// The transpose of a matrix (a rank-1 or rank-0 tensor is returned unchanged). Linear: its JVP and
    /// VJP are transposes too.
    public var transposed: Tensor {
        guard rank == 2 else {
            engineCheck(rank < 2, "transposed: only matrices are transposed; the shape is \(shape)")
            return self
        }
        return Transpose()(self)
    }

    /// `Σ xᵢ²`, as a scalar. Gradient `2x`.
    public func squaredNorm() -> Tensor { dot(self, self) }
}

/// The primitive behind `transposed` (matrices): linear, so `ẏ = ẋᵀ` and `x̄ = ȳᵀ`.
public struct Transpose: UnaryPrimitive {
    public var name: String { "transpose" }
    /// Batching: each batch element's matrix transposed.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { Batching.transposingMatrices(inputs[0]) }
    public func outputShape(_ x: [Int]) -> [Int] { [x[1], x[0]] }
    public func value(_ x: Tensor) -> Tensor {
        let out = [Double](unsafeUninitializedCapacity: x.count) { buffer, initialized in
            x.scalars.withUnsafeBufferPointer { src in Self.transpose(src, x.shape, into: buffer.baseAddress) }
            initialized = x.count
        }
        return Tensor(shape: [x.shape[1], x.shape[0]], scalars: out, trace: nil)
    }
    public func evaluate(_ buffers: PrimitiveBuffers) { Self.transpose(buffers.input(0), buffers.inputShapes[0], into: buffers.output) }
    /// `dst[j, i] = src[i, j]` for `src` of `shape` `[rows, cols]`.
    private static func transpose(_ src: UnsafeBufferPointer<Double>, _ shape: [Int], into dst: UnsafeMutablePointer<Double>?) {
        guard let dst else { return }
        let rows = shape[0], cols = shape[1]
        for i in 0..<rows { for j in 0..<cols { dst[j * rows + i] = src[i * cols + j] } }
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t.transposed }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g.transposed }
    public func swiftSource(_ x: String) -> String { "\(x).transposed" }
}
