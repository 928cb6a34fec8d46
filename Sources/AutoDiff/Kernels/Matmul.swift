/// Dense matrix-product kernels on raw row-major buffers.
enum MatmulKernel {
    /// `c[m×n] = op(a) · op(b)`, overwriting `c`.
    ///
    /// `op(a)` is `a` (stored `m×k`) or, when `transposeA`, `aᵀ` with `a` stored `k×m`; likewise `op(b)`
    /// is `b` (stored `k×n`) or `bᵀ` with `b` stored `n×k`. All buffers are row-major and contiguous.
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Double>, b: UnsafePointer<Double>, c: UnsafeMutablePointer<Double>
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * m + i] : a[i * k + p]
                    let bv = transposeB ? b[j * k + p] : b[p * n + j]
                    s += av * bv
                }
                c[i * n + j] = s
            }
        }
    }
}
