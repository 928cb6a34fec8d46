import Bilevel
import Foundation

/// P3 of `Docs/workloads.md`: data hyper-cleaning, binary logistic regression with one weight per
/// training sample.
///
/// Rows `r`: `Z[r][j] = sin((0.53(r+1) + 0.9(j+1)) + (0.0417(r+1))(j+1))`,
/// `s[r] = Σⱼ Z[r][j] cos(0.7(j+1)) + 0.3 sin(1.7(r+1))`, label `sign(s)` (≥ 0 → +1); every 5th training
/// label is flipped. Lower `f(x, w) = (1/n) Σ sigmoid(xᵢ) softplus(−ytrᵢ Xᵢ·w) + 1e-3 ‖w‖²`, upper
/// `F(w) = (1/m) Σ softplus(−yvᵢ Xvᵢ·w)`, `x0[i] = 0.5 cos(0.7(i+1))`.
public struct HyperCleaningWorkload {
    /// Training rows (500 in workloads.md).
    public let n: Int
    /// Validation rows (200).
    public let m: Int
    /// Features (50).
    public let d: Int
    /// Training design `[n, d]`.
    public let xtr: Tensor
    /// Training labels ±1 with every 5th flipped, `[n]`.
    public let ytr: Tensor
    /// Validation design `[m, d]`.
    public let xv: Tensor
    /// Clean validation labels, `[m]`.
    public let yv: Tensor
    /// The per-sample weights' logits where everything is evaluated, `[n]`.
    public let x0: Tensor

    /// Builds the data; the defaults are the sizes of workloads.md (smaller ones keep tests fast).
    public init(n: Int = 500, m: Int = 200, d: Int = 50) {
        precondition(n >= 1 && m >= 1 && d >= 1, "HyperCleaningWorkload: sizes must be positive, got n = \(n), m = \(m), d = \(d)")
        self.n = n
        self.m = m
        self.d = d
        var z = [Double](), labels = [Double]()
        z.reserveCapacity((n + m) * d)
        for r in 0..<(n + m) {
            var s = 0.0
            for j in 0..<d {
                let v = sin((0.53 * Double(r + 1) + 0.9 * Double(j + 1)) + (0.0417 * Double(r + 1)) * Double(j + 1))
                z.append(v)
                s += v * cos(0.7 * Double(j + 1))
            }
            labels.append(s + 0.3 * sin(1.7 * Double(r + 1)) >= 0 ? 1 : -1)
        }
        xtr = Tensor(shape: [n, d], scalars: Array(z[0..<(n * d)]))
        ytr = Tensor((0..<n).map { $0 % 5 == 0 ? -labels[$0] : labels[$0] })
        xv = Tensor(shape: [m, d], scalars: Array(z[(n * d)...]))
        yv = Tensor(Array(labels[n...]))
        x0 = Tensor((0..<n).map { 0.5 * cos(0.7 * Double($0 + 1)) })
    }

    /// `f(x, w) = (1/n) Σ sigmoid(xᵢ) softplus(−ytrᵢ Xᵢ·w) + 1e-3 ‖w‖²`.
    public func lower(_ x: Tensor, _ w: Tensor) -> Tensor {
        (sigmoid(x) * softplus(-(ytr * matmul(xtr, w)))).mean() + 1e-3 * w.squaredNorm()
    }

    /// `F(w) = (1/m) Σ softplus(−yvᵢ Xvᵢ·w)`.
    public func upper(_ x: Tensor, _ w: Tensor) -> Tensor { softplus(-(yv * matmul(xv, w))).mean() }

    /// The lower loss over the training samples `indices` (mean), for stochastic oracles.
    public func lowerBatch(_ x: Tensor, _ w: Tensor, _ indices: [Int]) -> Tensor {
        let rows = concatenate(indices.map { xtr.slice(alongAxis: 0, $0..<($0 + 1)) })
        let weights = concatenate(indices.map { x.slice(alongAxis: 0, $0..<($0 + 1)) })
        let labels = Tensor(indices.map { ytr.scalars[$0] })
        return (sigmoid(weights) * softplus(-(labels * matmul(rows, w)))).mean() + 1e-3 * w.squaredNorm()
    }

    /// The problem with gradient-descent inner dynamics (and the mini-batch lower loss).
    public func problem(steps: Int, step: Double = 10) -> BilevelProblem {
        BilevelProblem(
            upper: upper, lower: lower, dynamics: .gradientDescent(step: step), innerSteps: steps,
            lowerBatch: lowerBatch, lowerSampleCount: n)
    }

    /// The per-sample form of `lower`: data `[Xtr, ytr, I_n]` (the one-hot rows eᵢ read sample i's weight
    /// logit `⟨eᵢ, x⟩`) and one sample's loss `ℓᵢ(x, w) = sigmoid(⟨eᵢ, x⟩) softplus(−ytrᵢ Xᵢ·w) + 1e-3 ‖w‖²`,
    /// whose mean over the n samples is `f` and over a mini-batch is `lowerBatch`.
    ///
    /// - Throws: what `SampleLoss.init` throws (never, the three tensors share n rows).
    public func lowerSamples() throws -> SampleLoss {
        let identity = Tensor(shape: [n, n]) { $0 / n == $0 % n ? 1 : 0 }
        return try SampleLoss(data: [xtr, ytr, identity]) { x, w, sample in
            sigmoid(dot(sample[2], x)) * softplus(-(sample[1] * dot(sample[0], w))) + 1e-3 * w.squaredNorm()
        }
    }

    /// The problem with gradient-descent inner dynamics and the per-sample lower loss `lowerSamples()`
    /// (instead of the closure `lowerBatch`): WoodFisher's per-sample gradients and the stochastic
    /// methods' mini-batches are then batched programs when `derivatives` is `.staged`.
    ///
    /// - Throws: what `lowerSamples()` throws.
    public func perSampleProblem(steps: Int, step: Double = 10, derivatives: DerivativeMode = .eager) throws -> BilevelProblem {
        BilevelProblem(
            upper: upper, lower: lower, dynamics: .gradientDescent(step: step), innerSteps: steps,
            lowerSamples: try lowerSamples(), derivatives: derivatives)
    }

    /// `w*(x)` by Newton's method with full steps from 0 until `‖∇f‖₂ ≤ 1e-13` (at most 50 steps).
    public func solution(_ x: Tensor) -> Tensor {
        var w = Tensor(zeros: [d])
        for _ in 0..<50 {
            let g = gradient(at: w) { lower(x, $0) }
            if g.squaredNorm().scalar.squareRoot() <= 1e-13 { break }
            w = w - solve(hessian(at: w) { lower(x, $0) }, g)
        }
        return w
    }

    /// The exact hypergradient `dF/dxᵢ = −(1/n) σ'(xᵢ) ℓ'(zᵢ) ytrᵢ (Xᵢ·v)` with `zᵢ = ytrᵢ Xᵢ·w*`,
    /// `ℓ'(z) = −sigmoid(−z)`, `v = H⁻¹ ∇F(w*)` by a dense solve, at the inner solution `w`.
    public func exactHypergradient(_ x: Tensor, at w: Tensor) -> Tensor {
        let h = hessian(at: w) { lower(x, $0) }
        let v = solve(h, gradient(at: w) { upper(x, $0) })
        let s = sigmoid(x), z = ytr * matmul(xtr, w)
        return -(1 / Double(n)) * s * (1 - s) * (-sigmoid(-z)) * ytr * matmul(xtr, v)
    }
}
