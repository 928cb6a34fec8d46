import Foundation
import XCTest
@testable import Bilevel

/// The seeded stochastic Neumann estimate: unbiased for the K-term series, reproducible from its seed.
final class StochasticTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    /// Mean and standard error, per coordinate, of `draws` estimates.
    private func meanAndStandardError(_ draws: [Tensor]) -> (mean: Tensor, standardError: Tensor) {
        let count = Double(draws.count)
        let mean = draws.reduce(Tensor(zeros: draws[0].shape), +) / count
        let variance = draws.map { ($0 - mean) * ($0 - mean) }.reduce(Tensor(zeros: mean.shape), +) / (count - 1)
        return (mean, sqrt(variance / count))
    }

    /// Checks `estimates` against `target`: the projection on `target` within 3 standard errors, every
    /// coordinate within 4.5, and a non-zero spread (so the estimator is really random).
    private func assertUnbiased(_ estimates: [Tensor], _ target: Tensor, _ label: String, line: UInt = #line) {
        let (mean, se) = meanAndStandardError(estimates)
        let projections = estimates.map { Tensor(dot($0, target).scalar) }
        let (projectionMean, projectionSE) = meanAndStandardError(projections)
        let projectionZ = (projectionMean.scalar - dot(target, target).scalar) / projectionSE.scalar
        let zs = zip(mean.scalars, zip(target.scalars, se.scalars)).map { m, p in (m - p.0) / p.1 }
        let worst = zs.map(abs).max()!
        print("\(label): projection z = \(projectionZ), worst coordinate |z| = \(worst) over \(estimates.count) seeds, relative SE of the projection \(projectionSE.scalar / dot(target, target).scalar)")
        XCTAssertLessThan(abs(projectionZ), 3, label, line: line)
        XCTAssertLessThan(worst, 4.5, label, line: line)
        XCTAssertTrue(se.scalars.allSatisfy { $0 > 0 }, label, line: line)
    }

    func testStochasticNeumannIsUnbiasedForTheTruncatedSeries() throws {
        let x = ridge.x0, w = ridge.solution(x), problem = ridge.problem(steps: 1)
        let system = LinearSystem(oracle: BilevelOracle(problem), x: x, y: w)
        let b = gradient(at: w) { ridge.upper(x, $0) }
        // α = η/4 keeps the terms (I − αH)^k b comparable, so the single-draw variance is moderate.
        let alpha = ridge.eta / 4
        let series = try NeumannSeries(terms: 10, step: alpha).solve(system, rhs: b).solution
        let estimates = try (0..<400).map { seed in
            try StochasticNeumann(terms: 10, step: alpha, samples: 2, seed: UInt64(seed)).solve(system, rhs: b).solution
        }
        assertUnbiased(estimates, series, "stochastic Neumann (K = 10, J = 2, full H) vs NeumannSeries(10) on P1")
    }

    func testMiniBatchStochasticNeumannIsUnbiasedOnHyperCleaning() throws {
        let p3 = Fixtures.Cleaning(n: 40, m: 30, d: 8), x = p3.x0, w = p3.solution(x)
        let system = LinearSystem(oracle: BilevelOracle(p3.problem(steps: 1)), x: x, y: w)
        let b = gradient(at: w) { p3.upper(x, $0) }
        let series = try NeumannSeries(terms: 8, step: 10).solve(system, rhs: b).solution
        let estimates = try (0..<400).map { seed in
            try StochasticNeumann(terms: 8, step: 10, samples: 2, batchSize: 5, seed: UInt64(seed)).solve(system, rhs: b).solution
        }
        assertUnbiased(estimates, series, "stochastic Neumann (K = 8, J = 2, batches of 5 of 40) vs NeumannSeries(8) on P3")
    }

    func testStochasticNeumannIsDeterministicForAFixedSeed() throws {
        let p3 = Fixtures.Cleaning(n: 40, m: 30, d: 8), problem = p3.problem(steps: 20, step: 10), y0 = Tensor(zeros: [p3.d])
        func run(_ seed: UInt64) throws -> HypergradientResult {
            try Implicit(solver: .stochasticNeumann(terms: 20, step: 10, samples: 3, batchSize: 10, seed: seed)).hypergradient(of: problem, at: p3.x0, from: y0)
        }
        let a = try run(42), b = try run(42), c = try run(43)
        XCTAssertEqual(a.hypergradient.scalars, b.hypergradient.scalars)
        XCTAssertNotEqual(a.hypergradient.scalars, c.hypergradient.scalars)
        // The HVPs are the drawn truncations, plus one for the residual.
        XCTAssertEqual(a.diagnostics.counts.hvps, a.diagnostics.solverIterations! + 1)
        XCTAssertEqual(a.diagnostics.counts.mixedProducts, 1)
        XCTAssertTrue(a.diagnostics.notes.contains { $0.contains("truncations") }, "\(a.diagnostics.notes)")
    }

    func testInvalidParametersThrowWithTheirValues() {
        let problem = ridge.problem(steps: 1), w = ridge.solution(ridge.x0)
        let p3 = Fixtures.Cleaning(n: 40, m: 30, d: 8)
        func expect(_ fragments: [String], _ solver: StochasticNeumann, _ problem: BilevelProblem, at x: Tensor, _ y: Tensor, line: UInt = #line) {
            XCTAssertThrowsError(try Implicit(solver: solver).hypergradient(of: problem, at: x, innerSolution: y), line: line) { error in
                let message = "\(error)"
                for fragment in fragments { XCTAssertTrue(message.contains(fragment), "'\(message)' lacks '\(fragment)'", line: line) }
            }
        }
        expect(["StochasticNeumann.terms", "0"], StochasticNeumann(terms: 0, step: 0.1), problem, at: ridge.x0, w)
        expect(["StochasticNeumann.step", "-0.1"], StochasticNeumann(terms: 5, step: -0.1), problem, at: ridge.x0, w)
        expect(["StochasticNeumann.samples", "0"], StochasticNeumann(terms: 5, step: 0.1, samples: 0), problem, at: ridge.x0, w)
        expect(["StochasticNeumann.batchSize", "no lowerBatch"], StochasticNeumann(terms: 5, step: 0.1, batchSize: 3), problem, at: ridge.x0, w)
        expect(["StochasticNeumann.batchSize", "50", "40"], StochasticNeumann(terms: 5, step: 0.1, batchSize: 50), p3.problem(steps: 1), at: p3.x0, Tensor(zeros: [p3.d]))
    }
}
