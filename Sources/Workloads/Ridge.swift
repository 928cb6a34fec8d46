import Bilevel
import Foundation

/// P1 and P2 of `Docs/workloads.md`: ridge regression with one regularisation weight per feature.
///
/// Data (rows `r`, features `j`, 0-based): `Z[r][j] = sin((0.37(r+1) + 1.3(j+1)) + (0.0731(r+1))(j+1))`,
/// `t[r] = Σⱼ Z[r][j] cos(0.5(j+1)) + 0.1 sin(2.1(r+1) + 0.3)`; the first `n` rows train (`A, b`), the
/// next `m = n/2` validate (`C, dv`); hyperparameters `x0[j] = −3 + 0.5 cos(0.9(j+1))`.
/// Lower `f(x, w) = 0.5/n ‖A w − b‖² + 0.5 Σ exp(xⱼ) wⱼ²`, upper `F(w) = 0.5/m ‖C w − dv‖²`.
public struct RidgeWorkload {
    /// Training rows.
    public let n: Int
    /// Validation rows, `n / 2`.
    public let m: Int
    /// Features.
    public let d: Int
    /// Training design `[n, d]`.
    public let a: Tensor
    /// Training targets `[n]`.
    public let b: Tensor
    /// Validation design `[m, d]`.
    public let c: Tensor
    /// Validation targets `[m]`.
    public let dv: Tensor
    /// The hyperparameters where everything is evaluated, `[d]`.
    public let x0: Tensor
    /// The P2 step `η = 1/L`, `L` the largest eigenvalue of `H(x0)` by 500 power iterations from the
    /// all-ones vector. A constant: never differentiated.
    public let eta: Double
    /// The `d × d` identity, built once: `hessian` adds `diag(exp x)` as `identity ⊙ exp(x)` (stageable,
    /// and without rebuilding `d²` entries on every call).
    private let identity: Tensor
    /// `A/√n`, built once, so `hessian` forms `AᵀA/n` as the Gram product `(A/√n)ᵀ(A/√n)` with no pass
    /// dividing the `d × d` result by n.
    private let scaledA: Tensor

    /// The sizes of workloads.md: (200, 20), (1000, 100), (2000, 500).
    public static let sizes = [(n: 200, d: 20), (n: 1000, d: 100), (n: 2000, d: 500)]

    /// Builds the data of size `(n, d)` exactly as workloads.md writes it.
    public init(n: Int = 200, d: Int = 20) {
        precondition(n >= 2 && d >= 1, "RidgeWorkload: need n ≥ 2 and d ≥ 1, got n = \(n), d = \(d)")
        self.n = n
        self.d = d
        m = n / 2
        let rows = n + m
        var z = [Double](repeating: 0, count: rows * d), t = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            var s = 0.0
            for j in 0..<d {
                z[r * d + j] = sin((0.37 * Double(r + 1) + 1.3 * Double(j + 1)) + (0.0731 * Double(r + 1)) * Double(j + 1))
                s += z[r * d + j] * cos(0.5 * Double(j + 1))
            }
            t[r] = s + 0.1 * sin(2.1 * Double(r + 1) + 0.3)
        }
        a = Tensor(shape: [n, d], scalars: Array(z[0..<(n * d)]))
        b = Tensor(Array(t[0..<n]))
        c = Tensor(shape: [m, d], scalars: Array(z[(n * d)...]))
        dv = Tensor(Array(t[n...]))
        x0 = Tensor((0..<d).map { -3 + 0.5 * cos(0.9 * Double($0 + 1)) })
        identity = Tensor(shape: [d, d]) { k in k / d == k % d ? 1 : 0 }
        scaledA = a / Double(n).squareRoot()
        eta = 1 / Self.largestEigenvalue(Self.hessian(scaledA: scaledA, identity: identity, x: x0), iterations: 500)
    }

    /// `f(x, w) = 0.5/n ‖A w − b‖² + 0.5 Σ exp(xⱼ) wⱼ²`, written with engine ops.
    public func lower(_ x: Tensor, _ w: Tensor) -> Tensor {
        0.5 / Double(n) * (matmul(a, w) - b).squaredNorm() + 0.5 * (exp(x) * w * w).sum()
    }

    /// `F(w) = 0.5/m ‖C w − dv‖²` (independent of x).
    public func upper(_ x: Tensor, _ w: Tensor) -> Tensor { 0.5 / Double(m) * (matmul(c, w) - dv).squaredNorm() }

    /// `H(x) = AᵀA/n + diag(exp x)`, the lower level's Hessian in w.
    public func hessian(_ x: Tensor) -> Tensor { Self.hessian(scaledA: scaledA, identity: identity, x: x) }

    /// The lower loss over the training rows `indices` (mean squared residual over them, plus the full
    /// penalty), so the mean over all rows is `f`: the per-sample losses of stochastic and WoodFisher methods.
    public func lowerBatch(_ x: Tensor, _ w: Tensor, _ indices: [Int]) -> Tensor {
        let rows = concatenate(indices.map { a.slice(alongAxis: 0, $0..<($0 + 1)) })
        let targets = Tensor(indices.map { b.scalars[$0] })
        return 0.5 / Double(indices.count) * (matmul(rows, w) - targets).squaredNorm() + 0.5 * (exp(x) * w * w).sum()
    }

    /// The P2 problem: `dynamics` (default gradient descent with step η) for `steps` inner steps.
    public func problem(steps: Int, dynamics: InnerDynamics? = nil) -> BilevelProblem {
        BilevelProblem(upper: upper, lower: lower, dynamics: dynamics ?? .gradientDescent(step: eta), innerSteps: steps)
    }

    /// P2's gradient step with the lower gradient written out, `w − η (Aᵀ(A w − b)/n + exp(x) ⊙ w)`, its
    /// `Aᵀ(A w − b)` one fused `normalProduct` (one pass over A instead of two; its VJP `AᵀA w̄` is fused
    /// too). The same map as `.gradientDescent(step: eta)` on `lower`, up to rounding.
    public var fusedGradientDescent: InnerDynamics {
        let (a, b, n, eta) = (a, b, Double(n), eta)
        return .custom { w, x in w - eta * (normalProduct(a, w, minus: b) / n + exp(x) * w) }
    }

    /// `w*(x) = H(x)⁻¹ Aᵀb / n`.
    public func solution(_ x: Tensor) -> Tensor { solution(CholeskyFactorization(hessian(x))) }

    /// `w* = H⁻¹ Aᵀb / n` given the factorisation of `H`: `H = AᵀA/n + diag(exp x)` is symmetric positive
    /// definite for every x (`exp x > 0`), so the factorisation cannot fail.
    private func solution(_ h: CholeskyFactorization) -> Tensor { h.solve(matmul(b, a) / Double(n)) }

    /// The closed-form P1 hypergradient `dF/dxⱼ = −exp(xⱼ) w*ⱼ vⱼ`, `v = H⁻¹ ∇F(w*)`: H formed (AᵀA by the
    /// symmetric Gram product) and factored once, `H = L Lᵀ`, then two pairs of triangular solves.
    ///
    /// Written with stageable ops only, so `stage(shape: [d]) { ridge.exactHypergradient($0) }` records it
    /// with A, b, C, dv as constants; `optimized()` then folds `AᵀA/n` and `Aᵀb/n` once, at staging, and
    /// the program runs the diagonal update, the factorisation and the solves.
    public func exactHypergradient(_ x: Tensor) -> Tensor {
        let h = CholeskyFactorization(hessian(x)), w = solution(h)
        let v = h.solve(matmul(matmul(c, w) - dv, c) / Double(m))
        return -exp(x) * w * v
    }

    /// `φ_T(x) = F(w_T(x))` after T gradient steps from `w_0 = 0`.
    public func unrolledValue(_ x: Tensor, steps T: Int) -> Double {
        var w = Tensor(zeros: [d])
        for _ in 0..<T { w = w - eta * (matmul(matmul(a, w) - b, a) / Double(n) + exp(x) * w) }
        return upper(x, w).scalar
    }

    /// The exact derivative of `φ_T` by the reference loop of workloads.md, optionally truncated to the
    /// last `M` steps (`w_{T−M}` held constant; Shaban et al. 2019):
    /// `p = ∇F(w_T); for t = T−1 … T−M: h −= η exp(x) ⊙ w_t ⊙ p; p −= η (AᵀA p/n + exp(x) ⊙ p)`.
    public func unrolledHypergradient(_ x: Tensor, steps T: Int, truncation M: Int? = nil) -> Tensor {
        let h = hessian(x), atb = matmul(b, a) / Double(n)
        var ws = [Tensor(zeros: [d])]
        for t in 0..<T { ws.append(ws[t] - eta * (matmul(h, ws[t]) - atb)) }
        var p = matmul(matmul(c, ws[T]) - dv, c) / Double(m), g = Tensor(zeros: [d])
        for t in stride(from: T - 1, through: T - (M ?? T), by: -1) {
            g = g - eta * exp(x) * ws[t] * p
            p = p - eta * matmul(h, p)
        }
        return g
    }

    /// `AᵀA/n + I ⊙ exp(x)` (the identity times the row `exp(x)`, broadcast: `diag(exp x)`, stageable),
    /// given `scaledA = A/√n`: `AᵀA/n = scaledAᵀ scaledA` by the symmetric Gram product (`matmul` of one
    /// buffer with itself, about half the work), so no pass divides the `d × d` product by n.
    static func hessian(scaledA: Tensor, identity: Tensor, x: Tensor) -> Tensor {
        matmul(scaledA, scaledA, transposeA: true, transposeB: false) + identity * exp(x)
    }

    /// The largest eigenvalue of a symmetric positive semi-definite matrix by power iteration from ones.
    static func largestEigenvalue(_ h: Tensor, iterations: Int) -> Double {
        var v = Tensor(ones: [h.shape[0]]), lambda = 0.0
        for _ in 0..<iterations {
            let hv = matmul(h, v)
            lambda = hv.squaredNorm().scalar.squareRoot()
            v = hv / lambda
        }
        return lambda
    }
}
