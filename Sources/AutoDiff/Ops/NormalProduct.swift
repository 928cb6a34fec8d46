// The fused normal-equation product Aᵀ(A v − b): the gradient of ½‖A v − b‖², in one pass over A.

/// `Aᵀ(A v − b)`, or `AᵀA v` when `b` is `nil`, for a matrix `a` `[n, d]` and vectors `v` `[d]`,
/// `b` `[n]`: the gradient of `½‖A v − b‖²` in `v`.
///
/// The kernel streams `A` once (for each block of rows held in cache, `t = A_blk v − b_blk`, then
/// `out += A_blkᵀ t`), where `matmul(matmul(a, v) − b, a)` reads it twice. Rules, with `r = A v − b`:
/// JVP `Ȧᵀ r + Aᵀ(Ȧ v) + AᵀA v̇ − Aᵀ ḃ`; VJP `Ā = r ḡᵀ + (A ḡ) vᵀ`, `v̄ = AᵀA ḡ`, `b̄ = −A ḡ`.
///
/// - Precondition: `a` is a matrix, `v` a vector of its column count and `b` a vector of its row count;
///   the message names the shapes.
public func normalProduct(_ a: Tensor, _ v: Tensor, minus b: Tensor? = nil) -> Tensor {
    let product = NormalProduct(subtractsTarget: b != nil)
    _ = product.outputShape([a.shape, v.shape] + (b.map { [$0.shape] } ?? []))
    return product.apply([a, v] + (b.map { [$0] } ?? []))
}

/// The primitive behind `normalProduct(_:_:minus:)`; inputs `[a, v]` or `[a, v, b]`.
public struct NormalProduct: Primitive {
    /// Whether a third input `b` is subtracted from `A v`.
    public let subtractsTarget: Bool

    /// The product `Aᵀ(A v − b)` when `subtractsTarget`, else `AᵀA v`.
    public init(subtractsTarget: Bool) { self.subtractsTarget = subtractsTarget }

    public var name: String { "normalProduct" }

    /// Batching. An unbatched `A` with batched `v` (rows `V` `[B, d]`) and/or `b`: the GEMM form
    /// `R = V Aᵀ − b` `[B, n]`, then `R A` `[B, d]` (two GEMMs, each batch element's `Aᵀ(A v_b − b_b)` a
    /// row). A batched `A`: one product per batch element.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        guard !isBatched[0] else { return applyPerBatchElement(inputs, isBatched: isBatched, batchSize: batchSize) }
        let a = inputs[0], v = inputs[1]
        let products = isBatched[1] ? Matmul(transposeA: false, transposeB: true)(v, a) : matmul(a, v)
        let residuals = subtractsTarget ? products - inputs[2] : products
        return Matmul(transposeA: false, transposeB: false)(residuals, a)
    }

    public func outputShape(_ inputShapes: [[Int]]) -> [Int] {
        let a = inputShapes[0], v = inputShapes[1]
        let fits = inputShapes.count == (subtractsTarget ? 3 : 2) && a.count == 2 && v == [a[1]]
            && (!subtractsTarget || inputShapes[2] == [a[0]])
        engineCheck(fits, "\(AutoDiffError.shapeMismatch(op: "normalProduct", lhs: a, rhs: v, reason: "needs a matrix [n, d], a vector [d] and (for minus:) a vector [n]; got \(inputShapes)"))")
        return [a[1]]
    }

    public func value(_ inputs: [Tensor]) -> Tensor {
        let columns = inputs[0].shape[1]
        let out = [Double](unsafeUninitializedCapacity: columns) { buffer, initialized in
            inputs[0].scalars.withUnsafeBufferPointer { pa in
                inputs[1].scalars.withUnsafeBufferPointer { pv in
                    if subtractsTarget {
                        inputs[2].scalars.withUnsafeBufferPointer { pb in
                            product(pa.baseAddress, inputs[0].shape, pv.baseAddress, pb.baseAddress, into: buffer.baseAddress)
                        }
                    } else {
                        product(pa.baseAddress, inputs[0].shape, pv.baseAddress, nil, into: buffer.baseAddress)
                    }
                }
            }
            initialized = columns
        }
        return Tensor(shape: [columns], scalars: out, trace: nil)
    }

    public func evaluate(_ buffers: PrimitiveBuffers) {
        product(buffers.inputs[0], buffers.inputShapes[0], buffers.inputs[1], subtractsTarget ? buffers.inputs[2] : nil, into: buffers.output)
    }

    /// `out = Aᵀ(A v − b)` (or `AᵀA v` when `b` is nil) by the one-pass kernel, for `a` of `shape` `[n, d]`.
    private func product(
        _ a: UnsafePointer<Double>?, _ shape: [Int], _ v: UnsafePointer<Double>?, _ b: UnsafePointer<Double>?,
        into out: UnsafeMutablePointer<Double>?
    ) {
        guard let out, shape[1] > 0 else { return }
        guard let a, let v, shape[0] > 0 else { return out.update(repeating: 0, count: shape[1]) }
        MatmulKernel.normalProduct(rows: shape[0], columns: shape[1], a: a, v: v, b: b, out: out)
    }

    /// `A v − b` (or `A v`), with differentiable ops.
    private func residual(_ inputs: [Tensor]) -> Tensor {
        subtractsTarget ? matmul(inputs[0], inputs[1]) - inputs[2] : matmul(inputs[0], inputs[1])
    }

    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        let a = inputs[0]
        switch input {
        case 0: return matmul(residual(inputs), tangent) + matmul(matmul(tangent, inputs[1]), a)
        case 1: return normalProduct(a, tangent)
        default: return -matmul(tangent, a)
        }
    }

    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        let a = inputs[0], rows = a.shape[0], columns = a.shape[1]
        switch input {
        case 0:
            let column = { (x: Tensor, n: Int) in x.reshaped(to: [n, 1]) }, row = { (x: Tensor) in x.reshaped(to: [1, columns]) }
            return matmul(column(residual(inputs), rows), row(adjoint)) + matmul(column(matmul(a, adjoint), rows), row(inputs[1]))
        case 1: return normalProduct(a, adjoint)
        default: return -matmul(a, adjoint)
        }
    }

    public func swiftSource(_ arguments: [String]) -> String {
        "normalProduct(\(arguments[0]), \(arguments[1])\(subtractsTarget ? ", minus: \(arguments[2])" : ""))"
    }
}
