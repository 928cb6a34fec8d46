import Foundation
import XCTest
@testable import Bilevel
import Workloads

/// Seed 000's Algorithm 3 (SGD lower level, stochastic implicit gradient) on P1 with mini-batches of rows.
final class StochasticImplicitTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    /// With a batch of all n rows every mini-batch derivative is the full one, so the estimate equals T
    /// gradient steps followed by the deterministic K-term Neumann implicit hypergradient.
    func testFullBatchIsGradientDescentPlusNeumann() throws {
        let problem = ridge.stochasticProblem(steps: 40), y0 = Tensor(zeros: [ridge.d])
        let stochastic = try StochasticImplicit(batchSize: ridge.n, terms: 30, seed: 4).hypergradient(of: problem, at: ridge.x0, from: y0)
        let reference = try Implicit(solver: NeumannSeries(terms: 30, step: ridge.eta)).hypergradient(of: problem, at: ridge.x0, from: y0)
        print("StochasticImplicit (b = n) vs GD + Neumann: \(relativeError(stochastic.hypergradient, reference.hypergradient)); counts \(stochastic.diagnostics.counts)")
        XCTAssertLessThan(relativeError(stochastic.hypergradient, reference.hypergradient), 1e-10)
        XCTAssertLessThan(relativeError(stochastic.innerSolution, reference.innerSolution), 1e-12)
        let counts = stochastic.diagnostics.counts
        XCTAssertEqual([counts.gradients, counts.hvps, counts.mixedProducts], [41, 29, 1])
    }

    /// The estimate's variance over seeds (trace of the covariance, corrected for sampling without
    /// replacement) falls as 1/b: fitted log-log slope −1 over b = 2 … 32; and with b = 32 the mean over
    /// seeds is close to the closed form.
    func testVarianceFallsAsOneOverBatch() throws {
        let problem = ridge.stochasticProblem(steps: 30), y0 = ridge.solution(ridge.x0), exact = ridge.exactHypergradient(ridge.x0)
        let batches = [2, 4, 8, 16, 32], seeds = 40
        var means: [Tensor] = []
        let variances = try batches.map { batch -> Double in
            let draws = try (0..<seeds).map { seed in
                try StochasticImplicit(batchSize: batch, innerStep: 0.1, terms: 60, neumannStep: 0.1, seed: UInt64(seed))
                    .hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient
            }
            let mean = draws.reduce(Tensor(zeros: ridge.x0.shape), +) / Double(seeds)
            means.append(mean)
            return draws.map { ($0 - mean).squaredNorm().scalar }.reduce(0, +) / Double(seeds - 1) * Double(ridge.n - 1) / Double(ridge.n - batch)
        }
        let slope = logLogSlope(batches.map(Double.init), variances)
        let meanErrors = means.map { relativeError($0, exact) }
        print("StochasticImplicit on P1 (T = 30, K = 60, α = η = 0.1): batch \(batches), variance \(variances), fitted slope \(slope); mean of \(seeds) seeds vs closed form \(meanErrors)")
        XCTAssertEqual(slope, -1, accuracy: 0.15)
        XCTAssertLessThan(meanErrors.last!, 0.1)
    }

    /// Bad arguments throw errors naming the quantity.
    func testValidation() throws {
        let y0 = Tensor(zeros: [ridge.d])
        XCTAssertThrowsError(try StochasticImplicit(batchSize: 4).hypergradient(of: ridge.problem(steps: 5), at: ridge.x0, from: y0)) {
            XCTAssertTrue("\($0)".contains("StochasticImplicit.batchSize"), "\($0)")
        }
        XCTAssertThrowsError(try StochasticImplicit(batchSize: 4, terms: 0).hypergradient(of: ridge.stochasticProblem(steps: 5), at: ridge.x0, from: y0)) {
            XCTAssertTrue("\($0)".contains("StochasticImplicit.terms (K)"), "\($0)")
        }
        XCTAssertThrowsError(try StochasticImplicit(batchSize: 4, neumannStep: -1).hypergradient(of: ridge.stochasticProblem(steps: 5), at: ridge.x0, from: y0)) {
            XCTAssertTrue("\($0)".contains("neumannStep"), "\($0)")
        }
    }
}
