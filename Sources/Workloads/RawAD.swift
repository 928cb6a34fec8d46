import AutoDiff
import Foundation
import _Differentiation

/// P4 of `Docs/workloads.md`: a tanh MLP with a softplus loss (batch 128, inputs 32, hidden 64,
/// 2177 parameters) as a function of its flattened parameters.
public struct MLPWorkload {
    /// Batch size B.
    public let batch = 128
    /// Inputs D.
    public let inputs = 32
    /// Hidden units H.
    public let hidden = 64
    /// Inputs `X[r][k] = sin((0.29(r+1) + 0.61(k+1)) + (0.017(r+1))(k+1))`, `[B, D]`.
    public let x: Tensor
    /// Labels `y[r] = +1 if cos(0.83(r+1)) ≥ 0 else −1`, `[B]`.
    public let y: Tensor
    /// The flattened parameters θ: W1 row-major (k outer, h inner), then b1, W2, b2 (`P = 2177`).
    public let theta: Tensor
    /// The HVP direction `v[p] = cos(0.37(p+1))`.
    public let direction: Tensor

    /// Builds the data exactly as workloads.md writes it.
    public init() {
        let (b, d, h) = (128, 32, 64)
        x = Tensor(shape: [b, d]) { i in
            let r = Double(i / d + 1), k = Double(i % d + 1)
            return sin((0.29 * r + 0.61 * k) + (0.017 * r) * k)
        }
        y = Tensor((0..<b).map { cos(0.83 * Double($0 + 1)) >= 0 ? 1 : -1 })
        var p = [Double]()
        for k in 1...d { for j in 1...h { p.append(0.2 * sin((0.11 * Double(k) + 0.23 * Double(j)) + (0.05 * Double(k)) * Double(j))) } }
        for j in 1...h { p.append(0.1 * cos(0.4 * Double(j))) }
        for j in 1...h { p.append(0.3 * sin(0.19 * Double(j) + 0.5)) }
        p.append(0.05)
        theta = Tensor(p)
        direction = Tensor((0..<p.count).map { cos(0.37 * Double($0 + 1)) })
    }

    /// `f(θ) = (1/B) Σ_r softplus(−y_r (Σ_h W2[h] tanh(Σ_k X[r][k] W1[k][h] + b1[h]) + b2))`: one node per
    /// tensor op (matmul, add, tanh, matmul, add, multiply, softplus, mean). Differentiable by the tape
    /// and, through the registered rules, by the Swift compiler.
    @differentiable(reverse, wrt: theta)
    public func loss(_ theta: Tensor) -> Tensor {
        let w1Count = inputs * hidden
        let w1 = theta[0..<w1Count].reshaped(to: [inputs, hidden])
        let b1 = theta[w1Count..<(w1Count + hidden)]
        let w2 = theta[(w1Count + hidden)..<(w1Count + 2 * hidden)]
        let b2 = theta[(w1Count + 2 * hidden)..<(w1Count + 2 * hidden + 1)]
        let scores = matmul(tanh(matmul(x, w1) + b1), w2) + b2
        return softplus(-(y * scores)).mean()
    }
}

/// P4 of `Docs/workloads.md`: the Rosenbrock function `Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²`, vectorised
/// with slices, at `xᵢ = 0.5 + 0.4 sin(0.1(i+1))` with HVP direction `vᵢ = cos(0.3(i+1))`.
public struct RosenbrockWorkload {
    /// The dimension n (1000 or 100000 in workloads.md).
    public let n: Int
    /// The evaluation point.
    public let x: Tensor
    /// The HVP direction.
    public let direction: Tensor

    /// Builds the point and direction for dimension `n ≥ 2`.
    public init(n: Int) {
        precondition(n >= 2, "RosenbrockWorkload: n must be at least 2, got \(n)")
        self.n = n
        x = Tensor((0..<n).map { 0.5 + 0.4 * sin(0.1 * Double($0 + 1)) })
        direction = Tensor((0..<n).map { cos(0.3 * Double($0 + 1)) })
    }

    /// The Rosenbrock function, with tensor ops over slices (no element loop); differentiable by the
    /// tape and by the Swift compiler.
    @differentiable(reverse, wrt: x)
    public func value(_ x: Tensor) -> Tensor {
        let head = x[0..<(n - 1)], tail = x[1..<n]
        let gap = tail - head * head, miss = 1 - head
        return (100 * gap * gap + miss * miss).sum()
    }

    /// The exact gradient, by hand: `∂/∂xᵢ = −400 xᵢ (xᵢ₊₁ − xᵢ²) − 2(1 − xᵢ) + 200 (xᵢ − xᵢ₋₁²)`.
    public func exactGradient(_ x: Tensor) -> [Double] {
        let s = x.scalars
        var g = [Double](repeating: 0, count: n)
        for i in 0..<(n - 1) {
            let gap = s[i + 1] - s[i] * s[i]
            g[i] += -400 * s[i] * gap - 2 * (1 - s[i])
            g[i + 1] += 200 * gap
        }
        return g
    }

    /// The exact Hessian-vector product from the tridiagonal Hessian:
    /// `Hᵢᵢ += 1200 xᵢ² − 400 xᵢ₊₁ + 2`, `Hᵢ₊₁,ᵢ₊₁ += 200`, `Hᵢ,ᵢ₊₁ = Hᵢ₊₁,ᵢ = −400 xᵢ`.
    public func exactHVP(_ x: Tensor, _ v: Tensor) -> [Double] {
        let s = x.scalars, d = v.scalars
        var hv = [Double](repeating: 0, count: n)
        for i in 0..<(n - 1) {
            hv[i] += (1200 * s[i] * s[i] - 400 * s[i + 1] + 2) * d[i] - 400 * s[i] * d[i + 1]
            hv[i + 1] += 200 * d[i + 1] - 400 * s[i] * d[i]
        }
        return hv
    }
}
