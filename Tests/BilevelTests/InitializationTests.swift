import XCTest
@testable import Bilevel

/// x-dependent starts `y0 = g(x)` (`BilevelProblem.initialization`): every unrolled method against
/// central finite differences of the map it differentiates, with the start moving with x.
final class InitializationTests: XCTestCase {
    let w = Tensor(shape: [2, 3], scalars: [0.8, -0.3, 0.5, 0.2, 0.9, -0.6])
    let x0 = Tensor([0.3, -0.5, 0.7])

    /// `g(x) = 2 tanh(W x) + 0.3`: a non-trivial start in R², of x ∈ R³.
    func start(_ x: Tensor) -> Tensor { 2 * tanh(matmul(w, x)) + 0.3 }

    /// `f(x, y) = ½ Σᵢ (1 + xᵢ²) yᵢ² − ⟨W x, y⟩ + 0.1 Σ y⁴` (i = 0, 1),
    /// `F(x, y) = ½‖y − (1, −1)‖² + 0.1 ⟨W x, y⟩ + 0.05 ‖x‖²`.
    func problem(_ dynamics: InnerDynamics, steps: Int = 8) -> BilevelProblem {
        let w = self.w
        return BilevelProblem(
            upper: { x, y in 0.5 * (y - Tensor([1, -1])).squaredNorm() + 0.1 * dot(matmul(w, x), y) + 0.05 * x.squaredNorm() },
            lower: { x, y in
                let curvature = 1 + (x.slice(alongAxis: 0, 0..<2) * x.slice(alongAxis: 0, 0..<2))
                return 0.5 * (curvature * y * y).sum() - dot(matmul(w, x), y) + 0.1 * (y * y * y * y).sum()
            },
            dynamics: dynamics, innerSteps: steps, initialization: { x in self.start(x) })
    }

    /// The exact map `x ↦ F(x, y_T(x))` from `y0 = g(x)`.
    func exactMap(_ problem: BilevelProblem) -> (Tensor) throws -> Double {
        { x in try unrolledObjective(problem, x, from: self.start(x)) }
    }

    func report(_ name: String, _ g: Tensor, _ reference: Tensor, tolerance: Double) {
        let error = relativeError(g, reference)
        print("y0(x) \(name): relative error vs central differences \(error)")
        XCTAssertLessThan(error, tolerance, "\(name): \(g) vs \(reference)")
    }

    func testFullUnrollsIncludeTheStartTerm() throws {
        for dynamics in [InnerDynamics.gradientDescent(step: 0.2), .momentum(step: 0.15, beta: 0.5)] {
            let p = problem(dynamics)
            let reference = try finiteDifferenceGradient(at: x0, exactMap(p))
            let y0 = start(x0)
            report("RAD \(dynamics)", try ReverseUnroll().hypergradient(of: p, at: x0, from: y0).hypergradient, reference, tolerance: 1e-8)
            report("FAD \(dynamics)", try ForwardUnroll().hypergradient(of: p, at: x0, from: y0).hypergradient, reference, tolerance: 1e-8)
            report("TRAD-M=T \(dynamics)", try TruncatedReverseUnroll(truncation: 8).hypergradient(of: p, at: x0, from: y0).hypergradient, reference, tolerance: 1e-8)
            // Without the start term the estimate is wrong: the test would notice it missing.
            var constantStart = p
            constantStart.initialization = nil
            let withoutStart = try ReverseUnroll().hypergradient(of: constantStart, at: x0, from: y0).hypergradient
            XCTAssertGreaterThan(relativeError(withoutStart, reference), 1e-3)
        }
    }

    /// TRAD with M < T and first-order unrolling differentiate `x ↦ F(x, Ψ^M(s_{T−M}(x̄) + s_0(x) − s_0(x̄), x))`
    /// (the untracked steps taken as `A = I, B = 0`), with M = 0 for first-order.
    func testTruncatedAndFirstOrderIncludeTheStartTerm() throws {
        let p = problem(.gradientDescent(step: 0.2))
        let oracle = BilevelOracle(p)
        for m in [0, 3] {
            let frozen = try oracle.unroll(from: start(x0), x0, steps: 8 - m, like: start(x0)).final
            var tail = p
            tail.innerSteps = m
            let reference = try finiteDifferenceGradient(at: x0) { x in
                let s = frozen + self.start(x) - self.start(self.x0)
                let sT = try BilevelOracle(tail).unroll(from: s, x, steps: m, like: s).final
                return p.upper(x, sT).scalar
            }
            let estimate = m == 0
                ? try FirstOrderUnroll().hypergradient(of: p, at: x0, from: start(x0)).hypergradient
                : try TruncatedReverseUnroll(truncation: m).hypergradient(of: p, at: x0, from: start(x0)).hypergradient
            report(m == 0 ? "first-order" : "TRAD-\(m) of 8", estimate, reference, tolerance: 1e-8)
        }
    }

    func testBDAIncludesTheStartTerm() throws {
        let p = problem(.gradientDescent(step: 0.2))
        let (mu, alpha, beta) = (0.3, 0.1, 0.2)
        // The aggregated loop written out: y_{t+1} = y_t − (μ α/(t+1) ∇ᵧF + (1 − μ) β ∇ᵧf), from g(x).
        let reference = finiteDifferenceGradient(at: x0) { x in
            var y = self.start(x)
            for t in 0..<8 {
                let gUpper = gradient(at: y) { y in p.upper(x, y) }, gLower = gradient(at: y) { y in p.lower(x, y) }
                y = y - (mu * alpha / Double(t + 1) * gUpper + (1 - mu) * beta * gLower)
            }
            return p.upper(x, y).scalar
        }
        let bda = try BDA(aggregation: mu, upperStep: alpha, upperSchedule: .harmonic, innerStep: beta)
            .hypergradient(of: p, at: x0, from: start(x0)).hypergradient
        report("BDA", bda, reference, tolerance: 1e-8)
    }

    func testAStartThatIsNotInitializationOfXIsRejected() {
        let p = problem(.gradientDescent(step: 0.2))
        XCTAssertThrowsError(try ReverseUnroll().hypergradient(of: p, at: x0, from: Tensor([0, 0]))) { error in
            XCTAssertTrue("\(error)".contains("initialization"), "\(error)")
        }
        XCTAssertThrowsError(try OneStage().hypergradient(of: p, at: x0, from: start(x0)))
    }
}
