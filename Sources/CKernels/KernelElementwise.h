// The element-wise kernels (transcendentals and arithmetic), part of KernelBody.h: included by it, once
// per instruction set, with the same macros (CK_NAME, CK_VW) and vector helpers in scope.

// MARK: Transcendentals

/// ln 2 split so that `k · LN2_HIGH` is exact for |k| < 2²⁸ (Cody–Waite reduction).
static const double LN2_HIGH = 0x1.62e42fp-1, LN2_LOW = 0x1.df473de6af279p-26, INVERSE_LN2 = 1.4426950408889634;
/// Adding then subtracting 1.5 · 2⁵² rounds a double below 2⁵¹ in magnitude to the nearest integer, which
/// then sits in the low bits of the sum's bit pattern.
static const double ROUNDING_SHIFTER = 0x1.8p52;

/// `z = k ln 2 + r`, |r| ≤ ln 2 / 2: returns `eʳ − 1` (by `r + r² Σ_{j=2}^{13} r^{j−2}/j!`, the
/// truncated Taylor series; the first omitted term is below 10⁻¹⁷ relative) and k in `*k_out`.
static inline __attribute__((always_inline)) vd exp_reduced_minus_one(vd z, vi *k_out) {
    vd shifter = splat(ROUNDING_SHIFTER);
    vd shifted = z * splat(INVERSE_LN2) + shifter;
    vd k = shifted - shifter;
    vd r = (z - k * splat(LN2_HIGH)) - k * splat(LN2_LOW);
    vd q = r * splat(1.6059043836821613e-10) + splat(2.08767569878681e-09);
    q = q * r + splat(2.505210838544172e-08);
    q = q * r + splat(2.755731922398589e-07);
    q = q * r + splat(2.7557319223985893e-06);
    q = q * r + splat(2.48015873015873e-05);
    q = q * r + splat(1.984126984126984e-04);
    q = q * r + splat(1.388888888888889e-03);
    q = q * r + splat(8.333333333333333e-03);
    q = q * r + splat(4.1666666666666664e-02);
    q = q * r + splat(0.16666666666666666);
    q = q * r + splat(0.5);
    *k_out = (vi)shifted - (vi)shifter;
    return r + r * r * q;
}

/// `2ᵏ` for integer lanes −1022 ≤ k ≤ 1023, assembled from its exponent bits.
static inline __attribute__((always_inline)) vd power_of_two(vi k) { return (vd)((k + 1023) << 52); }

static inline __attribute__((always_inline)) vd lane_select(vi mask, vd yes, vd no) {
    return (vd)((mask & (vi)yes) | (~mask & (vi)no));
}

/// `tanh |x| = e/(e + 2)` with `e = e^{2|x|} − 1 = 2ᵏ(eʳ − 1) + (2ᵏ − 1)` (never cancelling), the sign of
/// x restored bit-exactly (tanh(−0) = −0); |x| ≥ 20 gives ±1, NaN stays NaN.
static inline __attribute__((always_inline)) vd tanh_lanes(vd x) {
    vi sign_mask = (vi)splat(-0.0);
    vd magnitude = (vd)((vi)x & ~sign_mask);
    vd clamped = lane_select(magnitude > splat(20), splat(20), magnitude);
    vi k;
    vd small = exp_reduced_minus_one(clamped + clamped, &k);
    vd two_to_k = power_of_two(k);
    vd e = two_to_k * small + (two_to_k - splat(1));
    vd t = e / (e + splat(2));
    vd signed_t = (vd)((vi)t | ((vi)x & sign_mask));
    return lane_select(x == x, signed_t, x);
}

/// `eˣ = 2ᵏ eʳ`, `2ᵏ` applied as two halves so that results in the subnormal range and up to the
/// largest double stay exact in their scaling; above 709.78 gives +∞, below −745.14 gives 0, NaN stays NaN.
static inline __attribute__((always_inline)) vd exp_lanes(vd x) {
    vd clamped = lane_select(x > splat(709.8), splat(709.8), lane_select(x < splat(-745.2), splat(-745.2), x));
    clamped = lane_select(x == x, clamped, splat(0));
    vi k;
    vd er = splat(1) + exp_reduced_minus_one(clamped, &k);
    vi half = k >> 1;
    vd result = er * power_of_two(half) * power_of_two(k - half);
    result = lane_select(x > splat(709.782712893384), splat(__builtin_inf()), result);
    result = lane_select(x < splat(-745.1332191019412), splat(0), result);
    return lane_select(x == x, result, x);
}

#define CK_ELEMENTWISE(name, lanes)                                                   \
    void CK_NAME(name)(long n, const double *x, double *out) {                        \
        long i = 0;                                                                   \
        for (; i + LANES <= n; i += LANES) store(out + i, lanes(load(x + i)));        \
        if (i < n) {                                                                  \
            double tail[LANES] = {0};                                                 \
            for (long j = i; j < n; j++) tail[j - i] = x[j];                          \
            vd result = lanes(load(tail));                                            \
            for (long j = i; j < n; j++) out[j] = result[j - i];                      \
        }                                                                             \
    }

CK_ELEMENTWISE(tanh, tanh_lanes)
CK_ELEMENTWISE(exp, exp_lanes)

/// `1/(1 + e⁻ˣ)` from `e = e^{−|x|}` (never overflowing): `1/(1 + e)` for x ≥ 0, `e/(1 + e)` below; ±∞ give
/// 1 and 0, NaN stays NaN (it passes through `exp_lanes`).
static inline __attribute__((always_inline)) vd sigmoid_lanes(vd x) {
    vd e = exp_lanes((vd)((vi)x | (vi)splat(-0.0)));
    vd denominator = splat(1) + e;
    return lane_select(x >= splat(0), splat(1) / denominator, e / denominator);
}

/// `−x` by flipping the sign bit (−0 for 0, NaN stays NaN).
static inline __attribute__((always_inline)) vd negate_lanes(vd x) { return (vd)((vi)x ^ (vi)splat(-0.0)); }

CK_ELEMENTWISE(sigmoid, sigmoid_lanes)
CK_ELEMENTWISE(negate, negate_lanes)

/// `log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|})`: the exponentials a vector at a time, libm's `log1p` per
/// lane (a vector log1p is not written yet); NaN stays NaN, +∞ gives +∞, −∞ gives 0.
static inline __attribute__((always_inline)) vd softplus_lanes(vd x) {
    vd e = exp_lanes((vd)((vi)x | (vi)splat(-0.0)));
    vd result;
    for (int j = 0; j < LANES; j++) result[j] = (x[j] > 0 ? x[j] : 0) + log1p(e[j]);
    return result;
}

/// `log x` by libm, lane by lane (no vector log yet: the gain is only the Swift closure call per element).
static inline __attribute__((always_inline)) vd log_lanes(vd x) {
    vd result;
    for (int j = 0; j < LANES; j++) result[j] = log(x[j]);
    return result;
}

CK_ELEMENTWISE(softplus, softplus_lanes)
CK_ELEMENTWISE(log, log_lanes)

// MARK: Element-wise arithmetic

/// `out[i] = a[i·a_step] OP b[i·b_step]` with steps 0 (a scalar broadcast) or 1; plain IEEE operations,
/// so the same bits on every instruction set.
#define CK_ARITHMETIC(name, OP)                                                                            \
    void CK_NAME(name)(long n, const double *a, long a_step, const double *b, long b_step, double *out) {  \
        long i = 0;                                                                                        \
        if (a_step == 1 && b_step == 1) {                                                                  \
            for (; i + LANES <= n; i += LANES) store(out + i, load(a + i) OP load(b + i));                 \
            for (; i < n; i++) out[i] = a[i] OP b[i];                                                      \
        } else if (a_step == 1) {                                                                          \
            double s = b[0];                                                                               \
            vd sv = splat(s);                                                                              \
            for (; i + LANES <= n; i += LANES) store(out + i, load(a + i) OP sv);                          \
            for (; i < n; i++) out[i] = a[i] OP s;                                                         \
        } else if (b_step == 1) {                                                                          \
            double s = a[0];                                                                               \
            vd sv = splat(s);                                                                              \
            for (; i + LANES <= n; i += LANES) store(out + i, sv OP load(b + i));                          \
            for (; i < n; i++) out[i] = s OP b[i];                                                         \
        } else {                                                                                           \
            for (; i < n; i++) out[i] = a[0] OP b[0];                                                      \
        }                                                                                                  \
    }

CK_ARITHMETIC(add, +)
CK_ARITHMETIC(subtract, -)
CK_ARITHMETIC(multiply, *)
CK_ARITHMETIC(divide, /)
