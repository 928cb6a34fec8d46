import Foundation
import XCTest
@testable import Bilevel

/// The fully first-order methods (F2SA, BOME, PBGD) and BDA on P1 (ridge) and P3 (hyper-cleaning).
final class FirstOrderTests: XCTestCase {
    let ridge = Fixtures.Ridge()
    let cleaning = Fixtures.Cleaning(n: 40, m: 30, d: 8)

    /// F2SA with (near-)exact inner loops approaches the P1 closed form with error O(1/λ).
    func testF2SABiasDecaysLikeOneOverLambda() throws {
        let exact = ridge.exactHypergradient(ridge.x0), problem = ridge.problem(steps: 300), y0 = Tensor(zeros: [ridge.d])
        let multipliers = [10.0, 100, 1000]
        let errors = try multipliers.map { lambda in
            relativeError(try F2SA(multiplier: lambda).hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient, exact)
        }
        let slopes = (1..<3).map { i in log10(errors[i] / errors[i - 1]) / log10(multipliers[i] / multipliers[i - 1]) }
        let fitted = log10(errors[2] / errors[0]) / 2
        print("F2SA vs P1 closed form for λ = \(multipliers): errors \(errors), slopes \(slopes), fitted slope \(fitted)")
        XCTAssertGreaterThan(fitted, -1.2)
        XCTAssertLessThan(fitted, -0.8)
        for slope in slopes { XCTAssertEqual(slope, -1, accuracy: 0.2) }
        XCTAssertLessThan(errors[2], 2e-3)
    }

    /// F2SA asks only for gradients: 3T + 3 of them, no HVP, mixed product, JVP or VJP.
    func testF2SAUsesOnlyGradients() throws {
        let result = try F2SA(multiplier: 100, innerSteps: 50).hypergradient(of: ridge.problem(steps: 1), at: ridge.x0, from: Tensor(zeros: [ridge.d]))
        let counts = result.diagnostics.counts
        print("F2SA counts: \(counts)")
        XCTAssertTrue(counts.hvps == 0 && counts.mixedProducts == 0 && counts.vjps == 0 && counts.jvps == 0, "\(counts)")
        XCTAssertEqual(counts.gradients, 3 * 50 + 3)
        XCTAssertEqual(result.diagnostics.innerSteps, 50)
        XCTAssertLessThan(relativeError(result.innerSolution, ridge.solution(ridge.x0)), 1e-8)
    }

    /// Stochastic F2SA on P3 (mini-batches of `lowerBatch`): deterministic given the seed, different across
    /// seeds, first-order only; a batch of all n samples reproduces full-gradient F2SA, and averaging seeds
    /// moves the estimate towards it.
    func testStochasticF2SAIsSeededAndFirstOrder() throws {
        let problem = cleaning.problem(steps: 100, step: 10), x = cleaning.x0, y0 = Tensor(zeros: [cleaning.d])
        let method = F2SA(multiplier: 20, batchSize: 20, seed: 7)
        let first = try method.hypergradient(of: problem, at: x, from: y0), again = try method.hypergradient(of: problem, at: x, from: y0)
        XCTAssertEqual(first.hypergradient.scalars, again.hypergradient.scalars)
        var other = method
        other.seed = 8
        XCTAssertNotEqual(try other.hypergradient(of: problem, at: x, from: y0).hypergradient.scalars, first.hypergradient.scalars)
        let counts = first.diagnostics.counts
        XCTAssertTrue(counts.hvps == 0 && counts.mixedProducts == 0 && counts.vjps == 0 && counts.jvps == 0, "\(counts)")
        XCTAssertEqual(counts.gradients, 3 * 100 + 3)
        let full = try F2SA(multiplier: 20).hypergradient(of: problem, at: x, from: y0).hypergradient
        let allSamples = try F2SA(multiplier: 20, batchSize: cleaning.n, seed: 3).hypergradient(of: problem, at: x, from: y0).hypergradient
        let seeds = 0..<20
        let mean = try seeds.map { seed -> Tensor in
            var m = method
            m.seed = UInt64(seed)
            return try m.hypergradient(of: problem, at: x, from: y0).hypergradient
        }.reduce(Tensor(zeros: x.shape), +) / Double(seeds.count)
        let single = relativeError(first.hypergradient, full), averaged = relativeError(mean, full)
        print("stochastic F2SA on P3 (λ = 20) vs full F2SA: batch of all 40 \(relativeError(allSamples, full)); batches of 20: one seed \(single), mean of 20 seeds \(averaged)")
        XCTAssertLessThan(relativeError(allSamples, full), 1e-10)
        XCTAssertLessThan(averaged, 0.5 * single)
    }

    /// `increasingMultiplier(by:)` gives λ_k = λ_0 + δ k and seed + k; under `minimize(methodAtStep:)` F2SA
    /// lowers the P3 validation loss.
    func testF2SAScheduleInMinimize() throws {
        let schedule = F2SA(multiplier: 10, innerSteps: 30, seed: 5).increasingMultiplier(by: 2)
        XCTAssertEqual(schedule(0).multiplier, 10)
        XCTAssertEqual(schedule(3).multiplier, 16)
        XCTAssertEqual(schedule(3).seed, 8)
        let before = validationLoss(cleaning.x0)
        let run = try minimize(
            cleaning.problem(steps: 30, step: 10), methodAtStep: schedule, from: cleaning.x0, y0: Tensor(zeros: [cleaning.d]),
            optimizer: .adam(step: 0.1), steps: 20, warmStart: true)
        let after = validationLoss(run.x)
        print("F2SA (λ_k = 10 + 2k) on P3: validation loss \(before) → \(after)")
        XCTAssertLessThan(after, 0.8 * before)
        XCTAssertTrue(run.diagnostics.last!.notes.contains { $0.contains("λ = 48.0") }, "\(run.diagnostics.last!.notes)")
    }

    /// The validation loss at the exact inner solution, `F(w*(x))`, on P3.
    private func validationLoss(_ x: Tensor) -> Double { cleaning.upper(x, cleaning.solution(x)).scalar }

    /// `F(w*(x))` on P1.
    private func ridgeLoss(_ x: Tensor) -> Double { ridge.upper(x, ridge.solution(x)).scalar }

    /// BOME and PBGD (joint x–y updates, y carried by the warm start, started at the lower solution
    /// y*(x0)) on P1 and P3: 30 steps close most of the gap `F(x0, y*(x0)) − Φ*` to the optimum Φ* (from a
    /// long run on the closed-form hypergradient) — 85% on P1, 65% on P3, where they close 93–96% and
    /// 77–80% — without overshooting it. (Their first x-gradient at y = y* is ∇ₓF, 0 on P1, so it cannot be
    /// compared in direction with the exact hypergradient.)
    func testBOMEAndPBGDFollowTheExactHypergradientRun() throws {
        let ridge = self.ridge, cleaning = self.cleaning
        let cases: [(String, BilevelProblem, Tensor, Tensor, [any HypergradientMethod], (Tensor) -> (hypergradient: Tensor, solution: Tensor), (Tensor) -> Double)] = [
            ("P1", ridge.problem(steps: 20), ridge.x0, ridge.solution(ridge.x0),
             [BOME(jointStep: ridge.eta, innerSteps: 20), PBGD(penalty: 10, innerSteps: 20)],
             { x in (ridge.exactHypergradient(x), ridge.solution(x)) }, ridgeLoss),
            ("P3", cleaning.problem(steps: 15, step: 10), cleaning.x0, cleaning.solution(cleaning.x0),
             [BOME(jointStep: 10, innerSteps: 15), PBGD(penalty: 10, innerSteps: 15)],
             { x in let w = cleaning.solution(x); return (cleaning.exactHypergradient(x, at: w), w) }, validationLoss),
        ]
        for (workload, problem, x0, y0, methods, exact, loss) in cases {
            let optimum = try referenceOptimum(problem, from: x0, y0: y0, steps: 400, exact: exact, loss: loss)
            XCTAssertLessThan(optimum.gradientNorm, 1e-2, "the reference run on \(workload) must reach the optimum")
            let before = loss(x0)
            for method in methods {
                let run = try minimize(problem, method: method, from: x0, y0: y0, optimizer: .adam(step: 0.1), steps: 30, warmStart: true)
                let after = loss(run.x), closed = (before - after) / (before - optimum.value)
                print("\(method.name) on \(workload): F(x, y*(x)) \(before) → \(after), optimum \(optimum.value): \(closed) of the gap closed")
                XCTAssertGreaterThan(closed, workload == "P1" ? 0.85 : 0.65, "\(method.name) on \(workload)")
                XCTAssertLessThan(closed, 1 + 1e-9, "\(method.name) on \(workload)")
                XCTAssertEqual(run.diagnostics.last!.counts.hvps + run.diagnostics.last!.counts.vjps, 0)
            }
        }
    }

    /// BOME's direction against an independent computation with plain gradients:
    /// λ = max((η_φ‖∇q‖² − ⟨∇F, ∇q⟩)/‖∇q‖², 0), d = ∇F + λ∇q, y ← y − ξ d_y; and d decreases q at rate
    /// ⟨d, ∇q⟩ ≥ η_φ‖∇q‖² (equality when λ > 0). Two starting points: y = 0.1 i, where F and f agree
    /// (λ = 0), and y = y* − 5 ∇ᵧF(x, y*), where descending F would raise f (λ > 0).
    func testBOMEDirectionMatchesItsFormula() throws {
        let problem = cleaning.problem(steps: 5, step: 10), x = cleaning.x0, method = BOME(jointStep: 1, innerSteps: 5)
        var multipliers: [Double] = []
        let wStar = cleaning.solution(x)
        for y in [Tensor(shape: [cleaning.d]) { 0.1 * Double($0) }, wStar - 5 * gradient(at: wStar) { cleaning.upper(x, $0) }] {
            let result = try method.hypergradient(of: problem, at: x, from: y)
            var z = y
            for _ in 0..<5 { z = z - 10 * gradient(at: z) { cleaning.lower(x, $0) } }
            let (fx, fy) = gradient(at: x, y, of: cleaning.lower), (upperX, upperY) = gradient(at: x, y, of: cleaning.upper)
            let qx = fx - gradient(at: x) { cleaning.lower($0, z) }, qy = fy
            let normSquared = qx.squaredNorm().scalar + qy.squaredNorm().scalar
            let alignment = dot(upperX, qx).scalar + dot(upperY, qy).scalar
            let lambda = max((0.5 * normSquared - alignment) / normSquared, 0)
            let dx = upperX + lambda * qx, dy = upperY + lambda * qy
            let rate = dot(dx, qx).scalar + dot(dy, qy).scalar
            print("BOME: λ = \(lambda), ⟨d, ∇q⟩ = \(rate), η_φ‖∇q‖² = \(0.5 * normSquared); \(result.diagnostics)")
            XCTAssertLessThan(relativeError(result.hypergradient, dx), 1e-12)
            XCTAssertLessThan(relativeError(result.innerSolution, y - dy), 1e-12)
            XCTAssertGreaterThanOrEqual(rate, 0.5 * normSquared * (1 - 1e-12))
            if lambda > 0 { XCTAssertEqual(rate, 0.5 * normSquared, accuracy: 1e-12 * normSquared) }
            XCTAssertEqual(result.diagnostics.counts.gradients, 5 + 3)
            multipliers.append(lambda)
        }
        XCTAssertTrue(multipliers.contains(0) && multipliers.contains { $0 > 0 }, "\(multipliers)")
    }

    /// PBGD's x-gradient at the penalty minimiser `y_γ = argmin_y F + γ f` (closed form on a small P1) with
    /// `z_T = y*` is the gradient of the penalty value function, which approaches the exact hypergradient
    /// with error O(1/γ): the errors at γ = 10, 100, 1000 fall by about 10× per decade. Its y-step is a step
    /// on F + γ f, which leaves `y_γ` in place.
    func testPBGDApproachesTheExactHypergradientLikeOneOverGamma() throws {
        let small = Fixtures.Ridge(n: 40, d: 5), x = small.x0
        let exact = small.exactHypergradient(x), h = small.hessian(x)
        let cc = matmul(small.c.transposed, small.c) / Double(small.m)
        let ctd = matmul(small.dv, small.c) / Double(small.m), atb = matmul(small.b, small.a) / Double(small.n)
        var errors: [Double] = []
        for gamma in [10.0, 100, 1000] {
            let penaltyMinimiser = AutoDiff.solve(cc + gamma * h, ctd + gamma * atb)
            let result = try PBGD(penalty: gamma, penaltySteps: 2, innerSteps: 4000).hypergradient(of: small.problem(steps: 1), at: x, from: penaltyMinimiser)
            errors.append(relativeError(result.hypergradient, exact))
            XCTAssertLessThan(relativeError(result.innerSolution, penaltyMinimiser), 1e-9, "γ = \(gamma)")
            XCTAssertEqual(result.diagnostics.counts.gradients, 4000 + 2 * 2 + 1)
        }
        print("PBGD at y_γ vs P1 closed form for γ = 10, 100, 1000: \(errors)")
        XCTAssertEqual(log10(errors[0] / errors[2]) / 2, 1, accuracy: 0.15)
        XCTAssertLessThan(errors[2], 1e-2)
    }

    /// BDA with μ > 0 is the exact derivative of its own unrolled map x ↦ F(x, y_T(x)), checked against
    /// central differences of an independent loop, for both schedules.
    func testBDAMatchesFiniteDifferencesOfItsUnrolledMap() throws {
        let problem = cleaning.problem(steps: 20, step: 10), y0 = Tensor(zeros: [cleaning.d])
        for schedule in [BDA.Schedule.harmonic, .constant] {
            let bda = BDA(aggregation: 0.3, upperStep: 5, upperSchedule: schedule)
            let result = try bda.hypergradient(of: problem, at: cleaning.x0, from: y0)
            func unrolled(_ x: Tensor) -> Double {
                var y = y0
                for t in 0..<20 {
                    let alpha = schedule == .harmonic ? 5 / Double(t + 1) : 5
                    y = y - (0.3 * alpha * gradient(at: y) { cleaning.upper(x, $0) } + 0.7 * 10 * gradient(at: y) { cleaning.lower(x, $0) })
                }
                return cleaning.upper(x, y).scalar
            }
            let fd = finiteDifferenceGradient(at: cleaning.x0, unrolled)
            let err = relativeError(result.hypergradient, fd)
            print("BDA (\(schedule)) vs central differences of its unrolled map: \(err); \(result.diagnostics)")
            XCTAssertLessThan(err, 1e-6)
            XCTAssertEqual(result.diagnostics.counts.vjps, 20)
            XCTAssertEqual(result.innerSolution.shape, y0.shape)
        }
    }

    /// μ = 0 is plain gradient descent with step β, so BDA equals RAD on the problem.
    func testBDAWithZeroAggregationIsRAD() throws {
        let problem = ridge.problem(steps: 15), y0 = Tensor(zeros: [ridge.d])
        let bda = try BDA(aggregation: 0, upperStep: 1).hypergradient(of: problem, at: ridge.x0, from: y0)
        let rad = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: y0)
        XCTAssertLessThan(relativeError(bda.hypergradient, rad.hypergradient), 1e-12)
        XCTAssertLessThan(relativeError(bda.innerSolution, rad.innerSolution), 1e-14)
    }

    /// Bad parameters throw `invalidArgument` / `invalidSteps` with messages naming the value.
    func testInvalidParametersThrowWithTheirValues() {
        let problem = ridge.problem(steps: 10), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        let p3 = cleaning.problem(steps: 10, step: 10), x3 = cleaning.x0, y3 = Tensor(zeros: [cleaning.d])
        func expect(_ fragments: [String], _ body: @autoclosure () throws -> HypergradientResult, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { error in
                let message = "\(error)"
                for fragment in fragments { XCTAssertTrue(message.contains(fragment), "'\(message)' lacks '\(fragment)'", line: line) }
            }
        }
        expect(["F2SA.multiplier", "-1.0"], try F2SA(multiplier: -1).hypergradient(of: problem, at: x, from: y0))
        expect(["F2SA.multiplier", "0.0"], try F2SA(multiplier: 0).hypergradient(of: problem, at: x, from: y0))
        expect(["F2SA.innerStep", "-0.5"], try F2SA(multiplier: 1, innerStep: -0.5).hypergradient(of: problem, at: x, from: y0))
        expect(["F2SA.penaltyStep", "0.0"], try F2SA(multiplier: 1, penaltyStep: 0).hypergradient(of: problem, at: x, from: y0))
        expect(["F2SA.innerSteps", "= 0"], try F2SA(multiplier: 1, innerSteps: 0).hypergradient(of: problem, at: x, from: y0))
        expect(["F2SA.batchSize", "no lowerBatch"], try F2SA(multiplier: 1, batchSize: 5).hypergradient(of: problem, at: x, from: y0))
        expect(["F2SA.batchSize", "41", "lower sample count 40"], try F2SA(multiplier: 1, batchSize: 41).hypergradient(of: p3, at: x3, from: y3))
        expect(["F2SA.batchSize", "0"], try F2SA(multiplier: 1, batchSize: 0).hypergradient(of: p3, at: x3, from: y3))
        expect(["F2SA.innerStep", "momentum"], try F2SA(multiplier: 1).hypergradient(of: ridge.problem(steps: 5, dynamics: .momentum(step: 0.1, beta: 0.5)), at: x, from: y0))
        expect(["BOME.jointStep", "0.0"], try BOME(jointStep: 0).hypergradient(of: problem, at: x, from: y0))
        expect(["BOME.controlCoefficient", "-2.0"], try BOME(jointStep: 1, controlCoefficient: -2).hypergradient(of: problem, at: x, from: y0))
        expect(["PBGD.penalty", "-3.0"], try PBGD(penalty: -3).hypergradient(of: problem, at: x, from: y0))
        expect(["PBGD.penaltySteps", "= 0"], try PBGD(penalty: 1, penaltySteps: 0).hypergradient(of: problem, at: x, from: y0))
        expect(["PBGD.penaltyStep", "-1.0"], try PBGD(penalty: 1, penaltyStep: -1).hypergradient(of: problem, at: x, from: y0))
        expect(["BDA.aggregation", "1.5"], try BDA(aggregation: 1.5, upperStep: 1).hypergradient(of: problem, at: x, from: y0))
        expect(["BDA.upperStep", "0.0"], try BDA(aggregation: 0.5, upperStep: 0).hypergradient(of: problem, at: x, from: y0))
        expect(["BDA.innerStep", "-1.0"], try BDA(aggregation: 0.5, upperStep: 1, innerStep: -1).hypergradient(of: problem, at: x, from: y0))
    }
}
