import CKernels

/// Transcendental functions evaluated a full vector register at a time (two, four or eight lanes, by
/// `KernelDispatch`), where libm's scalar calls dominate an op.
///
/// `tanh` was a libm call of about 10.6 ns per element, 60 % of the P4 MLP's value; a four-lane Swift
/// kernel on 128-bit SIMD took about 5.8 ns; this C kernel runs at the CPU's full width. Accuracy against
/// libm (checked in `VectorMathTests` on every instruction set): `tanh` within 3 ulp (2 ulp portable),
/// `exp` within 1 ulp. The algorithm (Cody–Waite reduction `z = k ln 2 + r`, a degree-13 Taylor
/// polynomial of `eʳ − 1`, `2ᵏ` from its exponent bits) is in Sources/CKernels/KernelBody.h.
enum VectorMath {
    /// `out[i] = tanh(x[i])`: `tanh |x| = e/(e + 2)` with `e = e^{2|x|} − 1` (no cancellation), the sign
    /// restored bit-exactly (tanh(−0) = −0); |x| ≥ 20 gives ±1, NaN stays NaN.
    static func tanh(_ x: UnsafeBufferPointer<Double>, _ out: UnsafeMutablePointer<Double>) { apply(ckernels_tanh, x, out) }

    /// `out[i] = e^{x[i]}`: `2ᵏ eʳ`; +∞ above 709.78, 0 below −745.13, NaN stays NaN.
    static func exp(_ x: UnsafeBufferPointer<Double>, _ out: UnsafeMutablePointer<Double>) { apply(ckernels_exp, x, out) }

    /// `out[i] = 1/(1 + e^{−x[i]})` from `e = e^{−|x|}` by the vector `exp`: `1/(1 + e)` for x ≥ 0,
    /// `e/(1 + e)` below (never overflowing); ±∞ give 1 and 0, NaN stays NaN. Within 2 ulp of that formula
    /// with libm's `exp`. Replaces two libm calls per element; not timed separately (no bench row is
    /// sigmoid-heavy), no other variant tried.
    static func sigmoid(_ x: UnsafeBufferPointer<Double>, _ out: UnsafeMutablePointer<Double>) { apply(ckernels_sigmoid, x, out) }

    /// `out[i] = log(1 + e^{x[i]}) = max(x, 0) + log1p(e^{−|x|})`: the vector `exp`, then libm's `log1p`
    /// per element (no vector `log1p` yet).
    static func softplus(_ x: UnsafeBufferPointer<Double>, _ out: UnsafeMutablePointer<Double>) { apply(ckernels_softplus, x, out) }

    /// `out[i] = log(x[i])`: libm's `log` called from a C loop (no vector `log` yet; the gain over the Swift
    /// closure is small), so the same bits as `Foundation.log`.
    static func log(_ x: UnsafeBufferPointer<Double>, _ out: UnsafeMutablePointer<Double>) { apply(ckernels_log, x, out) }

    /// `out[i] = −x[i]` (the sign bit flipped, a vector at a time).
    static func negate(_ x: UnsafeBufferPointer<Double>, _ out: UnsafeMutablePointer<Double>) { apply(ckernels_negate, x, out) }

    /// `kernel(n, x, out)` over the elements of `x` (nothing for an empty `x`).
    @inline(__always)
    private static func apply(
        _ kernel: (Int, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?) -> Void,
        _ x: UnsafeBufferPointer<Double>, _ out: UnsafeMutablePointer<Double>
    ) {
        if let base = x.baseAddress { kernel(x.count, base, out) }
    }
}
