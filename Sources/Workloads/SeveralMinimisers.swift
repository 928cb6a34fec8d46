import Bilevel

/// Two small bilevel problems whose lower levels have several minimisers, with closed-form optimistic and
/// pessimistic answers (Liu et al. 2021 (survey), eq. 7): the test bed of BDA and `PessimisticBDA`.
/// y = (y₁, y₂), x has one entry; both use gradient-descent dynamics with step 0.5 for T = 200 steps.
public enum SeveralMinimisers {
    /// Liu et al. 2020 (BDA)'s example: `f = ½y₁² − x y₁` leaves y₂ free, `S(x) = {(x, y₂)}`;
    /// `F = ½(x − y₂)² + ½(y₁ − 1)²`. Optimistic value `φ(x) = ½(x − 1)²` (y₂ = x). Unrolling that never
    /// moves y₂ from 0 differentiates `½x² + ½(x − 1)²` instead.
    public static var continuum: BilevelProblem {
        BilevelProblem(
            upper: { x, y in 0.5 * (x - y.slice(alongAxis: 0, 1..<2)).squaredNorm() + 0.5 * (y.slice(alongAxis: 0, 0..<1) - 1).squaredNorm() },
            lower: { x, y in 0.5 * y.slice(alongAxis: 0, 0..<1).squaredNorm() - dot(x, y.slice(alongAxis: 0, 0..<1)) },
            dynamics: .gradientDescent(step: 0.5), innerSteps: 200)
    }

    /// The optimistic hypergradient of `continuum`, `∇φ(x) = x − 1`.
    public static func continuumOptimisticHypergradient(_ x: Double) -> Double { x - 1 }

    /// A double well: `f = ½(y₁ − x)² + ¼(y₂² − 1)²`, `S(x) = {(x, 1), (x, −1)}`; `F = ½(y₁ − 1)² + x y₂`.
    /// For x > 0: optimistic `φ_o = ½(x − 1)² − x` (y₂ = −1), pessimistic `φ_p = ½(x − 1)² + x` (y₂ = +1),
    /// apart by 2x in value and 2 in slope; y₂ = 0 is a saddle of f.
    public static var doubleWell: BilevelProblem {
        BilevelProblem(
            upper: { x, y in 0.5 * (y.slice(alongAxis: 0, 0..<1) - 1).squaredNorm() + dot(x, y.slice(alongAxis: 0, 1..<2)) },
            lower: { x, y in
                let y2 = y.slice(alongAxis: 0, 1..<2)
                return 0.5 * (y.slice(alongAxis: 0, 0..<1) - x).squaredNorm() + 0.25 * ((y2 * y2 - 1) * (y2 * y2 - 1)).sum()
            },
            dynamics: .gradientDescent(step: 0.5), innerSteps: 200)
    }

    /// `(∇φ_o(x), ∇φ_p(x)) = (x − 1 − 1, x − 1 + 1)` of `doubleWell` for x > 0.
    public static func doubleWellHypergradients(_ x: Double) -> (optimistic: Double, pessimistic: Double) { (x - 2, x) }
}
