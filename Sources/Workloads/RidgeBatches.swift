import Bilevel

extension RidgeWorkload {
    /// P1 with gradient steps η and the per-row mini-batch lower loss `lowerBatch` over the n training
    /// rows, for the stochastic methods (StochasticImplicit, stochastic F2SA/F³SA).
    public func stochasticProblem(steps: Int) -> BilevelProblem {
        BilevelProblem(
            upper: upper, lower: lower, dynamics: .gradientDescent(step: eta), innerSteps: steps,
            lowerBatch: lowerBatch, lowerSampleCount: n)
    }
}
