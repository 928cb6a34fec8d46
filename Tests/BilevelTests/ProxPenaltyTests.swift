import Foundation
import XCTest
@testable import Bilevel
import Workloads

/// The prox-smoothed penalty methods on the example of Kwon et al.'s talk (Part III): scalar x, y ∈ [−1, 1],
/// `min_x x² + y*²` with `y* ∈ argmin_{y∈[−1,1]} x y`. The lower level is linear in y (not strongly convex,
/// a solution set that jumps at x = 0): `F(x) = x² + 1` for x ≠ 0 and `F(0) = 0`. Its penalty landscape,
/// `ψ_σ(x) = (min_y σ(x² + y²) + x y − min_z x z)/σ`, is `x² + 1` for |x| ≥ 2σ and
/// `x² − x²/(4σ²) + |x|/σ` inside, with minimiser x = 0.
final class ProxPenaltyTests: XCTestCase {
    static func clip(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, scalars: t.scalars.map { min(max($0, -1), 1) }) }

    static var problem: BilevelProblem { BilevelProblem(
        upper: { x, y in (x * x + y * y).sum() }, lower: { x, y in (x * y).sum() }) }

    /// `ψ_σ'(x)` in closed form.
    static func envelopeSlope(_ x: Double, sigma: Double) -> Double {
        abs(x) >= 2 * sigma ? 2 * x : 2 * x - x / (2 * sigma * sigma) + (x > 0 ? 1 : -1) / sigma
    }

    /// At a fixed x and σ the two-loop method's x-direction (divided by σ) converges to ψ_σ'(x) on both
    /// sides of the kink region: 2x outside |x| < 2σ, `2x − x/(2σ²) + sign(x)/σ` inside.
    func testDirectionMatchesTheEnvelopeSlope() throws {
        for x in [0.5, 0.1, -0.05] {
            let method = ProxPenalty(
                proximal: 1, penalty: 0.1, penaltyExponent: 0, upperStep: 1e-12, lowerStep: 0.5, innerSteps: 20,
                lowerProjection: Self.clip)
            let run = try method.minimize(Self.problem, from: Tensor([x]), y0: Tensor([0.0]), steps: 300)
            let got = run.estimates.last!.scalar, want = Self.envelopeSlope(x, sigma: 0.1)
            print("prox-penalty at x = \(x), σ = 0.1: direction/σ = \(got), ψ_σ' = \(want); y = \(run.y.scalar), z = \(run.z.scalar)")
            XCTAssertEqual(got, want, accuracy: 1e-6 * max(1, abs(want)))
        }
    }

    /// From x0 = 0.6 with σ_k = 0.5 s_k^(−1/3), both the two-loop and the single-loop forms drive x to the
    /// minimiser 0 of the penalty landscape (where F(0) = 0), although F is discontinuous there: with
    /// constant steps the iterates circle 0 (z must travel from −1 to 1 each time x changes sign), so the
    /// test bounds their tail average (≤ 0.03) and mean distance from 0 (≤ 0.1, a sixth of the start).
    func testBothLoopsReachTheMinimiser() throws {
        for inner in [10, nil] as [Int?] {
            let method = ProxPenalty(
                proximal: 1, penalty: 0.5, upperStep: 0.005, lowerStep: 0.5, innerSteps: inner, lowerProjection: Self.clip)
            let run = try method.minimize(Self.problem, from: Tensor([0.6]), y0: Tensor([0.0]), steps: 600, projection: Self.clip)
            let tail = run.points.suffix(200).map(\.scalar)
            let meanAbsolute = tail.map(abs).reduce(0, +) / 200, average = tail.reduce(0, +) / 200
            print("\(method.name): x_K = \(run.x.scalar); over the last 200 steps mean |x| \(meanAbsolute), mean x \(average); λ_K = \(run.multipliers.last!), counts \(run.counts)")
            XCTAssertLessThan(meanAbsolute, 0.1)
            XCTAssertLessThan(abs(average), 0.03)
            XCTAssertEqual(run.counts.hvps + run.counts.mixedProducts, 0)
        }
    }

    /// A nonconvex lower level, the double well `f(x, y) = (y² − 1)²/4 − ε x y` (ε = 0.5), with upper
    /// `F = (y − 2)² + x²`. Started in the right well, y*(x) is the root of `y³ − y − εx = 0` near 1, so
    /// `∇F(x) = 2x + 2(y* − 2) ε/(3y*² − 1)` (Newton on the cubic). At x = 0.3 the two-loop direction/σ
    /// approaches ∇F with error O(σ): the error halves when σ halves (fitted slope 1 in σ).
    func testNonconvexDoubleWellLowerLevel() throws {
        let epsilon = 0.5, x = 0.3
        let problem = BilevelProblem(
            upper: { x, y in ((y - 2) * (y - 2) + x * x).sum() },
            lower: { x, y in (0.25 * (y * y - 1) * (y * y - 1) - epsilon * x * y).sum() })
        var root = 1.0
        for _ in 0..<50 { root -= (root * root * root - root - epsilon * x) / (3 * root * root - 1) }
        let exact = 2 * x + 2 * (root - 2) * epsilon / (3 * root * root - 1)
        let sigmas = [0.04, 0.02, 0.01]
        let errors = try sigmas.map { sigma -> Double in
            let method = ProxPenalty(proximal: 0.2, penalty: sigma, penaltyExponent: 0, upperStep: 1e-12, lowerStep: 0.1, innerSteps: 20)
            let run = try method.minimize(problem, from: Tensor([x]), y0: Tensor([1.0]), steps: 200)
            return abs(run.estimates.last!.scalar - exact)
        }
        let slope = logLogSlope(sigmas, errors)
        print("double-well lower level at x = 0.3: y* = \(root), ∇F = \(exact); σ = \(sigmas): errors \(errors), fitted slope \(slope)")
        XCTAssertEqual(slope, 1, accuracy: 0.1)
        XCTAssertLessThan(errors.last!, 0.05 * abs(exact))
    }

    /// Bad constants throw errors naming them.
    func testValidation() {
        let base = ProxPenalty(proximal: 0.1, penalty: 0.5, upperStep: 0.01, lowerStep: 0.05)
        var bad = base
        bad.smoothing = 1.5
        XCTAssertThrowsError(try bad.minimize(Self.problem, from: Tensor([0.6]), y0: Tensor([0.0]), steps: 3)) {
            XCTAssertTrue("\($0)".contains("smoothing (β₀)"), "\($0)")
        }
        bad = base
        bad.proximal = 0
        XCTAssertThrowsError(try bad.minimize(Self.problem, from: Tensor([0.6]), y0: Tensor([0.0]), steps: 3)) {
            XCTAssertTrue("\($0)".contains("proximal (ρ)"), "\($0)")
        }
        bad = base
        bad.penaltyExponent = -1
        XCTAssertThrowsError(try bad.minimize(Self.problem, from: Tensor([0.6]), y0: Tensor([0.0]), steps: 3)) {
            XCTAssertTrue("\($0)".contains("penaltyExponent"), "\($0)")
        }
    }
}
