import Foundation
import XCTest
@testable import Bilevel
import Workloads

/// F2SA's outer loop with the schedules of Kwon et al. 2023 (`ScheduledF2SA`) and its momentum variant
/// F³SA, on P1 (ridge, closed-form hypergradient).
final class PenaltyScheduleTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    /// P1's upper variable restricted to the box [−5, 0]ᵈ (the unconstrained hyperobjective decreases
    /// towards x → −∞, so it has no minimiser).
    static func box(_ x: Tensor) -> Tensor { Tensor(shape: x.shape, scalars: x.scalars.map { min(max($0, -5), 0) }) }

    /// `F(x, w*(x))` on P1.
    func hyperobjective(_ x: Tensor) -> Double { ridge.upper(x, ridge.solution(x)).scalar }

    /// α_k, γ_k, λ_k are the polynomials of the theorems: λ_k s_k^(c−a), γ_k s_k^c and α_k s_k^a are constant.
    func testScheduleIsPolynomialWithTheTheoremsExponents() throws {
        let (a, c) = PenaltySchedule.f2saExponents(.upperAndLower)
        XCTAssertEqual(a, 5.0 / 7)
        XCTAssertEqual(c, 4.0 / 7)
        XCTAssertTrue(PenaltySchedule.f3saExponents(.upper) == (0.5, 0.25))
        let schedule = PenaltySchedule(multiplier: 4, lowerStep: 0.5, stepExponent: a, lowerStepExponent: c, offset: 8)
        for k in [0, 3, 50, 1000] {
            let s = (Double(k) + 8) / 8
            XCTAssertEqual(schedule.multiplier(at: k) * pow(s, c - a), 4, accuracy: 1e-12)
            XCTAssertEqual(schedule.lowerStep(at: k) * pow(s, c), 0.5, accuracy: 1e-12)
            XCTAssertEqual(schedule.penaltyStep(at: k) * pow(s, a), 0.1, accuracy: 1e-12)
        }
        XCTAssertLessThan(schedule.multiplier(at: 0), schedule.multiplier(at: 1))
        XCTAssertGreaterThan(schedule.penaltyStep(at: 0), schedule.penaltyStep(at: 1))
    }

    /// At a fixed x (ξ ≈ 0) with y and z carried across steps, the estimate's error against the closed
    /// form decays like 1/λ_k ∝ k^(−(a−c)) = k^(−1/3): the fitted log-log slope over k is −1/3.
    func testScheduledF2SABiasDecaysAtThePapersRate() throws {
        let (a, c) = PenaltySchedule.f2saExponents(.exact)
        let schedule = PenaltySchedule(multiplier: 10, lowerStep: ridge.eta, stepExponent: a, lowerStepExponent: c, offset: 1, ratio: 1e-9)
        let run = try ScheduledF2SA(schedule: schedule, innerSteps: 3).minimize(
            ridge.problem(steps: 1), from: ridge.x0, y0: Tensor(zeros: [ridge.d]), steps: 600)
        let exact = ridge.exactHypergradient(ridge.x0), grid = [6, 20, 60, 200, 599]
        let errors = grid.map { (run.estimates[$0] - exact).squaredNorm().scalar.squareRoot() }
        let slope = logLogSlope(grid.map { Double($0) + 1 }, errors)
        let scaled = zip(grid, errors).map { run.multipliers[$0.0] * $0.1 }
        print("ScheduledF2SA on P1 at x0: k = \(grid), λ_k = \(grid.map { run.multipliers[$0] }), error \(errors), λ_k·error \(scaled), fitted slope \(slope) (paper: −\(a - c))")
        XCTAssertEqual(slope, -(a - c), accuracy: 0.03)
        for e in scaled { XCTAssertEqual(e, scaled.last!, accuracy: 0.1 * scaled.last!) }
        XCTAssertEqual(run.counts.gradients, 600 * (3 * 3 + 3))
        XCTAssertEqual(run.counts.hvps + run.counts.mixedProducts + run.counts.jvps + run.counts.vjps, 0)
    }

    /// The scheduled outer loop on the box-constrained P1 reaches the optimum found by projected gradient
    /// descent with the closed-form hypergradient: the gap in F closes to under 5% of its initial value.
    func testScheduledF2SAReachesTheP1Optimum() throws {
        var reference = ridge.x0
        for _ in 0..<1500 { reference = Self.box(reference - 20 * ridge.exactHypergradient(reference)) }
        let best = hyperobjective(reference), start = hyperobjective(ridge.x0)
        let (a, c) = PenaltySchedule.f2saExponents(.exact)
        let schedule = PenaltySchedule(multiplier: 10, lowerStep: ridge.eta, stepExponent: a, lowerStepExponent: c, offset: 10, ratio: 250)
        let run = try ScheduledF2SA(schedule: schedule, innerSteps: 2).minimize(
            ridge.problem(steps: 1), from: ridge.x0, y0: Tensor(zeros: [ridge.d]), steps: 300, projection: Self.box)
        let reached = hyperobjective(run.x)
        print("ScheduledF2SA on box P1: F(x0) = \(start), F(x_K) = \(reached), optimum \(best); gap closed to \((reached - best) / (start - best)); ‖x_K − x*‖ = \((run.x - reference).squaredNorm().scalar.squareRoot())")
        XCTAssertLessThan((reached - best) / (start - best), 0.05)
    }

    /// With exact gradients F³SA's momentum weight is η_k = 1, and F³SA is ScheduledF2SA with T = 1, to the bit.
    func testF3SAWithExactGradientsIsF2SAWithOneInnerStep() throws {
        let (a, c) = PenaltySchedule.f3saExponents(.exact)
        let schedule = PenaltySchedule(multiplier: 10, lowerStep: ridge.eta, stepExponent: a, lowerStepExponent: c, offset: 10, ratio: 50)
        let f3sa = F3SA(schedule: schedule)
        XCTAssertEqual(f3sa.momentumWeight(at: 7), 1)
        let problem = ridge.problem(steps: 1), y0 = Tensor(zeros: [ridge.d])
        let momentum = try f3sa.minimize(problem, from: ridge.x0, y0: y0, steps: 30)
        let plain = try ScheduledF2SA(schedule: schedule, innerSteps: 1).minimize(problem, from: ridge.x0, y0: y0, steps: 30)
        XCTAssertEqual(momentum.x.scalars, plain.x.scalars)
        XCTAssertEqual(momentum.counts.gradients, 30 * 6)
    }

    /// Stochastic P1 at a fixed x: F³SA's momentum estimate (η_k = s_k^(−4/5)) tracks ∇F(x) with a smaller
    /// error than the same single loop without momentum on the same mini-batch sizes.
    func testF3SAMomentumReducesStochasticError() throws {
        let problem = ridge.stochasticProblem(steps: 1), y0 = ridge.solution(ridge.x0), exact = ridge.exactHypergradient(ridge.x0)
        let (a, c) = PenaltySchedule.f3saExponents(.upperAndLower)
        let schedule = PenaltySchedule(multiplier: 10, lowerStep: ridge.eta, stepExponent: a, lowerStepExponent: c, offset: 1, ratio: 1e-9)
        func meanError(_ run: PenaltyTrajectory) -> Double {
            run.estimates.suffix(100).map { ($0 - exact).squaredNorm().scalar.squareRoot() }.reduce(0, +) / 100
        }
        let momentum = meanError(try F3SA(schedule: schedule, batchSize: 5, seed: 1).minimize(problem, from: ridge.x0, y0: y0, steps: 300))
        let plain = meanError(try F3SA(schedule: schedule, momentumExponent: 0, batchSize: 5, seed: 1).minimize(problem, from: ridge.x0, y0: y0, steps: 300))
        print("stochastic P1 (batches of 5), mean error of the last 100 estimates: F3SA \(momentum), without momentum \(plain); ‖∇F‖ = \(exact.squaredNorm().scalar.squareRoot())")
        XCTAssertLessThan(momentum, 0.5 * plain)
    }

    /// The one-shot stochastic F2SA estimate at fixed λ = 10 (step 0.1, stable for single-row batches): its variance (trace of the covariance over
    /// seeds, corrected for sampling without replacement by (N − 1)/(N − b)) falls as 1/batch.
    func testStochasticF2SAVarianceScalesAsOneOverBatch() throws {
        let problem = ridge.stochasticProblem(steps: 20), y0 = ridge.solution(ridge.x0), batches = [2, 4, 8, 16, 32], seeds = 40
        let variances = try batches.map { batch -> Double in
            let draws = try (0..<seeds).map { seed in
                try F2SA(multiplier: 10, innerStep: 0.1, batchSize: batch, seed: UInt64(seed)).hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient
            }
            let mean = draws.reduce(Tensor(zeros: ridge.x0.shape), +) / Double(seeds)
            let trace = draws.map { ($0 - mean).squaredNorm().scalar }.reduce(0, +) / Double(seeds - 1)
            return trace * Double(ridge.n - 1) / Double(ridge.n - batch)
        }
        let slope = logLogSlope(batches.map(Double.init), variances)
        print("stochastic F2SA (λ = 10, T = 20) on P1: batch \(batches), variance \(variances), fitted slope \(slope)")
        XCTAssertEqual(slope, -1, accuracy: 0.15)
    }

    /// The new methods cannot honour `problem.constraints`: each throws `unsupportedConstraints` through the
    /// shared validation, naming itself.
    func testNewMethodsRejectLowerLevelConstraints() throws {
        var problem = ridge.boxProblem()
        problem.lowerSampleCount = ridge.n
        let x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        let schedule = PenaltySchedule(multiplier: 1, lowerStep: 0.1, stepExponent: 0.5, lowerStepExponent: 0.25)
        let attempts: [(String, () throws -> Any)] = [
            ("F2SA-scheduled", { try ScheduledF2SA(schedule: schedule).minimize(problem, from: x, y0: y0, steps: 2) }),
            ("F3SA", { try F3SA(schedule: schedule).minimize(problem, from: x, y0: y0, steps: 2) }),
            ("prox-penalty-two-loop", { try ProxPenalty(proximal: 1, penalty: 0.1, upperStep: 0.1, lowerStep: 0.1).minimize(problem, from: x, y0: y0, steps: 2) }),
            ("implicit-stochastic", { try StochasticImplicit(batchSize: 4).hypergradient(of: problem, at: x, from: y0) }),
            ("MORBiT", { try MORBiT(solver: ExactSolve(), upperStep: 0.1, lowerStep: 0.1, weightStep: 0).minimize(tasks: [problem], from: x, y0s: [y0], steps: 2) }),
        ]
        for (name, attempt) in attempts {
            XCTAssertThrowsError(try attempt()) { error in
                XCTAssertTrue("\(error)".contains(name) && "\(error)".contains("constraints"), "\(error)")
            }
        }
    }

    /// Bad schedules and loop arguments throw errors naming the quantity.
    func testScheduleValidation() throws {
        let problem = ridge.problem(steps: 1), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        func expect(_ fragments: [String], _ body: () throws -> Any) {
            XCTAssertThrowsError(try body()) { error in
                let text = "\(error)"
                for f in fragments { XCTAssertTrue(text.contains(f), "\(text) lacks \(f)") }
            }
        }
        let good = PenaltySchedule(multiplier: 1, lowerStep: 0.1, stepExponent: 0.5, lowerStepExponent: 0.25)
        var bad = good
        bad.lowerStepExponent = 0.75
        expect(["exponents", "a = 0.5", "c = 0.75"]) { try ScheduledF2SA(schedule: bad).minimize(problem, from: x, y0: y0, steps: 2) }
        bad = good
        bad.multiplier = -2
        expect(["λ₀", "-2.0"]) { try F3SA(schedule: bad).minimize(problem, from: x, y0: y0, steps: 2) }
        bad = good
        bad.offset = 0.5
        expect(["k₀", "0.5"]) { try F3SA(schedule: bad).minimize(problem, from: x, y0: y0, steps: 2) }
        expect(["F2SA-scheduled outer steps", "= 0"]) { try ScheduledF2SA(schedule: good).minimize(problem, from: x, y0: y0, steps: 0) }
        expect(["F3SA.momentumExponent", "-1.0"]) { try F3SA(schedule: good, momentumExponent: -1).minimize(problem, from: x, y0: y0, steps: 2) }
        expect(["F2SA-scheduled z0"]) { try ScheduledF2SA(schedule: good).minimize(problem, from: x, y0: y0, z0: Tensor(zeros: [3]), steps: 2) }
        expect(["F3SA.batchSize", "no lowerBatch"]) { try F3SA(schedule: good, batchSize: 4).minimize(problem, from: x, y0: y0, steps: 2) }
    }
}
