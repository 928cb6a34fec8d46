import Bilevel

extension RidgeWorkload {
    /// The P1 lower loss over the training rows `indices` (mean squared residual over the batch plus the
    /// full penalty): `f_B(x, w) = 0.5/|B| Σ_{r∈B} (A_r·w − b_r)² + 0.5 Σ exp(xⱼ) wⱼ²`, an unbiased
    /// mini-batch form of `lower` for uniform batches.
    public func lowerBatch(_ x: Tensor, _ w: Tensor, _ indices: [Int]) -> Tensor {
        let rows = concatenate(indices.map { a.slice(alongAxis: 0, $0..<($0 + 1)) })
        let targets = Tensor(indices.map { b.scalars[$0] })
        return 0.5 / Double(indices.count) * (matmul(rows, w) - targets).squaredNorm() + 0.5 * (exp(x) * w * w).sum()
    }

    /// P1 with gradient steps η and the mini-batch lower loss over the n training rows.
    public func stochasticProblem(steps: Int) -> BilevelProblem {
        BilevelProblem(
            upper: upper, lower: lower, dynamics: .gradientDescent(step: eta), innerSteps: steps,
            lowerBatch: lowerBatch, lowerSampleCount: n)
    }
}
