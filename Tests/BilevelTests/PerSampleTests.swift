import Foundation
import XCTest
@testable import Bilevel
import Workloads

/// Per-sample losses (`SampleLoss`): the oracle's per-sample gradients (one vmapped program when staged),
/// WoodFisher and the stochastic methods on them, against eager loops, `lowerBatch` closures, central
/// differences and a closed form.
final class PerSampleTests: XCTestCase {
    /// A small P3 (30 training samples, 5 features) where every derivative is checked.
    let cleaning = HyperCleaningWorkload(n: 30, m: 12, d: 5)
    /// An inner point away from the solution, so that every per-sample gradient differs.
    var w: Tensor { Tensor((0..<cleaning.d).map { 0.3 * sin(1.3 * Double($0) + 0.2) }) }
    /// Indices out of order, with a repeat, so that a permuted or deduplicated batch fails.
    let indices = [7, 0, 29, 3, 3, 18, 11]

    /// The per-sample P3 problem, with the validation loss as its per-sample upper loss too.
    func sampleProblem(_ derivatives: DerivativeMode) throws -> BilevelProblem {
        var problem = try cleaning.perSampleProblem(steps: 6, step: 2, derivatives: derivatives)
        problem.upperSamples = try SampleLoss(data: [cleaning.xv, cleaning.yv]) { _, w, sample in
            softplus(-(sample[1] * dot(sample[0], w)))
        }
        return problem
    }

    /// Row k of the staged (vmapped) and of the eager per-sample gradients is `∇_w` of sample
    /// `indices[k]`'s loss: equal to `gradient(lowerBatch(x, w, [i]))` to 1e-12 and to central differences
    /// of the sample loss to 1e-6; K gradients counted; the staged program is one vmapped program.
    func testSampleGradientsMatchEagerGradientsAndFiniteDifferences() throws {
        let x = cleaning.x0, w = w
        let reference = indices.map { i in gradient(at: w) { cleaning.lowerBatch(x, $0, [i]) } }
        let samples = try cleaning.lowerSamples()
        for mode in [DerivativeMode.eager, .staged] {
            let problem = try sampleProblem(mode), oracle = BilevelOracle(problem)
            let rows = try oracle.lowerSampleGradients(x, w, indices: indices)
            XCTAssertEqual(rows.shape, [indices.count, cleaning.d])
            XCTAssertEqual(oracle.counts.gradients, indices.count)
            for (k, i) in indices.enumerated() {
                XCTAssertLessThan(relativeError(rows[k], reference[k]), 1e-12, "\(mode) sample \(i)")
                let sample = samples.data.map { $0[i] }
                let differences = finiteDifferenceGradient(at: w) { samples.loss(x, $0, sample).scalar }
                XCTAssertLessThan(relativeError(rows[k], differences), 1e-6, "\(mode) sample \(i) vs central differences")
            }
            if mode == .staged {
                let summary = try XCTUnwrap(problem.stagedPrograms.first { $0.derivative.contains("per-sample gradients") })
                XCTAssertEqual(summary.shapes, [[cleaning.n], [cleaning.d], [indices.count]])
                XCTAssertNotNil(summary.applicationCount, "\(summary)")
                XCTAssertTrue(oracle.notes.isEmpty, "\(oracle.notes)")
                // Every op of the gradient batches by a rule: the program does not grow with K.
                _ = try oracle.lowerSampleGradients(x, w, indices: Array(0..<cleaning.n))
                let sizes = problem.stagedPrograms.filter { $0.derivative.contains("per-sample gradients") }.map(\.applicationCount)
                XCTAssertEqual(sizes.count, 2)
                XCTAssertEqual(sizes[0], sizes[1], "\(problem.stagedPrograms)")
                var changed = problem
                changed.lowerSamples = samples
                XCTAssertTrue(changed.stagedPrograms.isEmpty, "setting lowerSamples drops the staged programs")
            }
        }
    }

    /// WoodFisher on `lowerSamples` (eager and staged) equals WoodFisher on the `lowerBatch` closure to
    /// 1e-12, in both curvature modes, single samples and mini-batches of 4 (the last one shorter).
    func testWoodFisherOnSampleLossEqualsWoodFisherOnLowerBatch() throws {
        let x = cleaning.x0, w = w, rhs = Tensor((0..<cleaning.d).map { cos(0.4 * Double($0)) })
        let solvers: [WoodFisher] = [
            .woodFisher(damping: 0.05), .woodFisher(damping: 0.05, batchSize: 4, seed: 2),
            .iterativeWoodFisher(damping: 0.05), .iterativeWoodFisher(damping: 0.05, samples: 9, seed: 3),
        ]
        for solver in solvers {
            let viaBatch = try solver.solve(LinearSystem(oracle: BilevelOracle(cleaning.problem(steps: 6)), x: x, y: w), rhs: rhs).solution
            for mode in [DerivativeMode.eager, .staged] {
                let oracle = BilevelOracle(try sampleProblem(mode))
                let viaSamples = try solver.solve(LinearSystem(oracle: oracle, x: x, y: w), rhs: rhs).solution
                XCTAssertLessThan(relativeError(viaSamples, viaBatch), 1e-12, "\(solver.curvature) \(mode)")
                XCTAssertEqual(oracle.counts.hvps, 0)
            }
        }
    }

    /// One-shot WoodFisher on `lowerSamples` equals the dense `(γI + (1/K) Σ gₖgₖᵀ)⁻¹ b` over the seeded
    /// shuffle's mini-batch gradients (each the mean of its samples' `lowerBatch` gradients), with more
    /// batches than unknowns (K = 8 > n = 5: the n × n solve) and fewer (K = 3: the K × K capacitance solve).
    func testOneShotWoodFisherOnSampleLossEqualsTheDenseFisherSolve() throws {
        let x = cleaning.x0, w = w, rhs = Tensor((0..<cleaning.d).map { cos(0.4 * Double($0)) }), gamma = 0.05
        for (size, seed) in [(4, UInt64(2)), (12, UInt64(5))] {
            var generator = SeededGenerator(seed: seed)
            let order = generator.sample(cleaning.n, from: cleaning.n)
            let batches = stride(from: 0, to: cleaning.n, by: size).map { Array(order[$0..<min($0 + size, cleaning.n)]) }
            let identity = Tensor(shape: [cleaning.d, cleaning.d]) { $0 / cleaning.d == $0 % cleaning.d ? 1 : 0 }
            let fisher = batches.reduce(gamma * identity) { sum, batch in
                let g = batch.map { i in gradient(at: w) { cleaning.lowerBatch(x, $0, [i]) } }.reduce(Tensor(zeros: [cleaning.d]), +) / Double(batch.count)
                return sum + matmul(g.reshaped(to: [cleaning.d, 1]), g.reshaped(to: [1, cleaning.d])) / Double(batches.count)
            }
            let oracle = BilevelOracle(try sampleProblem(.staged))
            let solution = try WoodFisher.woodFisher(damping: gamma, batchSize: size, seed: seed).solve(LinearSystem(oracle: oracle, x: x, y: w), rhs: rhs)
            XCTAssertLessThan(relativeError(solution.solution, AutoDiff.solve(fisher, rhs)), 1e-11, "batches of \(size)")
            XCTAssertEqual(oracle.counts.gradients, cleaning.n)
        }
    }

    /// The closed form of `ApproximateSolverTests`, written per sample: `fᵢ = ½(aᵢᵀ(y − x) + sᵢ)² +
    /// ½γ‖y − x‖²` with the aᵢ in pairs and `sᵢ = ±1` has `∇²ᵧᵧf = γI + (1/N) Σ gᵢgᵢᵀ` at `y* = x`, so
    /// WoodFisher over single samples equals the dense solve and the hypergradient `∇ₓF + ∇ᵧF`.
    func testWoodFisherOnSampleLossIsExactForAnEmpiricalFisherHessian() throws {
        let gamma = 0.3, directions = [[0.9, -0.4, 1.3], [0.2, 1.1, -0.5], [-0.7, 0.3, 0.8]]
        let a = Tensor(shape: [6, 3], scalars: directions.flatMap { $0 + $0 }), s = Tensor([1, -1, 1, -1, 1, -1])
        let samples = try SampleLoss(data: [a, s]) { x, y, sample in
            0.5 * (dot(sample[0], y - x) + sample[1]).squaredNorm() + 0.5 * gamma * (y - x).squaredNorm()
        }
        let target = Tensor([0.5, -0.2, 0.1])
        for mode in [DerivativeMode.eager, .staged] {
            let problem = BilevelProblem(
                upper: { x, y in 0.5 * (y - target).squaredNorm() + 0.1 * dot(x, x) },
                lower: { x, y in samples.meanLoss(x, y, rows: samples.data) },
                lowerSamples: samples, derivatives: mode)
            let x = Tensor([0.4, -0.7, 0.2]), y = x, rhs = Tensor([0.3, -1.2, 0.7])
            let dense = AutoDiff.solve(hessian(at: y) { problem.lower(x, $0) }, rhs)
            for solver in [WoodFisher.woodFisher(damping: gamma), .iterativeWoodFisher(damping: gamma)] {
                let solution = try solver.solve(LinearSystem(oracle: BilevelOracle(problem), x: x, y: y), rhs: rhs).solution
                XCTAssertLessThan(relativeError(solution, dense), 1e-10, "\(solver.name) \(mode)")
                let result = try Implicit(solver: solver).hypergradient(of: problem, at: x, innerSolution: y)
                XCTAssertLessThan(relativeError(result.hypergradient, 0.2 * x + (y - target)), 1e-10, "\(solver.name) \(mode)")
            }
        }
    }

    /// The stochastic methods on the per-sample problem: staged (one program per batch size over the
    /// gathered rows) equals eager with the same seed to 1e-12, and eager equals the same run on the
    /// `lowerBatch` closure (same indices drawn).
    func testStagedStochasticMethodsEqualTheirEagerRuns() throws {
        let x = cleaning.x0, y0 = Tensor(zeros: [cleaning.d])
        let methods: [any HypergradientMethod] = [
            StochasticImplicit(batchSize: 6, terms: 4, seed: 5),
            Implicit(solver: .stochasticNeumann(terms: 5, step: 1, samples: 3, batchSize: 6, seed: 2)),
            F2SA(multiplier: 2, batchSize: 6, seed: 7),
        ]
        for method in methods {
            let eager = try method.hypergradient(of: try sampleProblem(.eager), at: x, from: y0)
            let stagedProblem = try sampleProblem(.staged)
            let staged = try method.hypergradient(of: stagedProblem, at: x, from: y0)
            XCTAssertLessThan(relativeError(staged.hypergradient, eager.hypergradient), 1e-12, method.name)
            XCTAssertEqual(staged.diagnostics.counts, eager.diagnostics.counts, method.name)
            XCTAssertTrue(staged.diagnostics.notes.allSatisfy { !$0.contains("could not be staged") }, "\(staged.diagnostics.notes)")
            XCTAssertTrue(stagedProblem.stagedPrograms.contains { $0.derivative.contains("mini-batch") && $0.shapes.last == [6] }, "\(method.name): \(stagedProblem.stagedPrograms) \(staged.diagnostics.notes)")
            var closures = cleaning.problem(steps: 6, step: 2)
            let (xv, yv) = (cleaning.xv, cleaning.yv)
            closures.upperBatch = { _, w, batch in
                softplus(-(Tensor(batch.map { yv.scalars[$0] }) * matmul(concatenate(batch.map { xv.slice(alongAxis: 0, $0..<($0 + 1)) }), w))).mean()
            }
            closures.upperSampleCount = cleaning.m
            let viaClosures = try method.hypergradient(of: closures, at: x, from: y0)
            XCTAssertLessThan(relativeError(eager.hypergradient, viaClosures.hypergradient), 1e-12, method.name)
        }
    }

    /// A sample loss that reads a value cannot be staged: the oracle notes why and loops eagerly, with the
    /// same rows.
    func testAnUnstageableSampleLossFallsBackAndSaysWhy() throws {
        let samples = try SampleLoss(data: [cleaning.xtr, cleaning.ytr]) { _, w, sample in
            softplus(-(sample[1].scalar * dot(sample[0], w)))
        }
        var problem = BilevelProblem(upper: cleaning.upper, lower: cleaning.lower, lowerSamples: samples)
        let eager = try BilevelOracle(problem).lowerSampleGradients(cleaning.x0, w, indices: indices)
        problem.derivatives = .staged
        let oracle = BilevelOracle(problem)
        let fallback = try oracle.lowerSampleGradients(cleaning.x0, w, indices: indices)
        XCTAssertEqual(fallback.scalars, eager.scalars)
        XCTAssertTrue(oracle.notes.contains { $0.contains("per-sample gradients") && $0.contains("could not be staged") }, "\(oracle.notes)")
    }

    /// Data tensors with different sample counts, a non-scalar sample loss, an index out of range and a
    /// missing per-sample loss throw `BilevelError`s naming the quantity.
    func testBadInputThrowsNamingTheQuantity() throws {
        func expect(_ fragments: [String], _ body: () throws -> Any) {
            XCTAssertThrowsError(try body()) { error in
                XCTAssertTrue(error is BilevelError, "\(error)")
                for fragment in fragments { XCTAssertTrue("\(error)".contains(fragment), "\(error) lacks \(fragment)") }
            }
        }
        expect(["SampleLoss.data[1]", "29 samples", "data[0] has 30"]) {
            try SampleLoss(data: [cleaning.xtr, cleaning.ytr[0..<29]]) { _, w, _ in w.sum() }
        }
        expect(["SampleLoss.data", "is empty"]) { try SampleLoss(data: []) { _, w, _ in w.sum() } }
        expect(["SampleLoss.data[0]", "leading sample axis"]) { try SampleLoss(data: [Tensor(2.0)]) { _, w, _ in w.sum() } }
        let vectorLoss = try SampleLoss(data: [cleaning.xtr]) { _, w, sample in sample[0] * w }
        for mode in [DerivativeMode.eager, .staged] {
            let problem = BilevelProblem(upper: cleaning.upper, lower: cleaning.lower, lowerSamples: vectorLoss, derivatives: mode)
            expect(["BilevelProblem.lowerSamples.loss(x, y, sample)", "[5]"]) { try BilevelOracle(problem).lowerSampleGradients(cleaning.x0, self.w, indices: [1]) }
            expect(["BilevelProblem.lowerSamples.loss(x, y, sample)"]) { try BilevelOracle(problem).lowerBatchGradients(cleaning.x0, self.w, indices: [1, 2]) }
        }
        let problem = try sampleProblem(.staged)
        expect(["BilevelProblem.lowerSamples indices", "30", "outside the 30 samples"]) { try BilevelOracle(problem).lowerSampleGradients(cleaning.x0, self.w, indices: [2, 30]) }
        expect(["BilevelProblem.upperSamples indices", "-1"]) { try BilevelOracle(problem).upperBatchGradients(cleaning.x0, self.w, indices: [-1]) }
        expect(["lowerSamples indices", "empty"]) { try BilevelOracle(problem).lowerBatchHVP(cleaning.x0, self.w, self.w, indices: []) }
        expect(["BilevelProblem.lowerSamples", "no per-sample lower loss"]) { try BilevelOracle(self.cleaning.problem(steps: 1)).lowerSampleGradients(cleaning.x0, self.w, indices: [0]) }
        expect(["StochasticImplicit.batchSize", "exceeds the lower sample count 30"]) {
            try StochasticImplicit(batchSize: 31).hypergradient(of: problem, at: cleaning.x0, from: self.w)
        }
    }

    /// The snippet of Docs/bilevel.md, "Per-sample losses and vmap": the per-sample gradients equal the
    /// `lowerBatch` gradients, WoodFisher and StochasticImplicit equal their runs on the `lowerBatch`
    /// closure, and the staged programs are the batched ones.
    func testDocumentationSnippet() throws {
        let cleaning = HyperCleaningWorkload(n: 100, m: 40, d: 10)
        let oneHot = Tensor(shape: [100, 100]) { $0 / 100 == $0 % 100 ? 1 : 0 }   // row i reads xᵢ = ⟨eᵢ, x⟩
        let samples = try SampleLoss(data: [cleaning.xtr, cleaning.ytr, oneHot]) { x, w, sample in
            sigmoid(dot(sample[2], x)) * softplus(-(sample[1] * dot(sample[0], w))) + 1e-3 * w.squaredNorm()
        }
        let problem = BilevelProblem(
            upper: cleaning.upper, lower: cleaning.lower, dynamics: .gradientDescent(step: 1), innerSteps: 50,
            lowerSamples: samples, derivatives: .staged)
        let x = cleaning.x0, w = cleaning.solution(x)
        let g = try BilevelOracle(problem).lowerSampleGradients(x, w, indices: Array(0..<100))   // [100, 10], one replay
        let woodFisher = try Implicit(solver: .woodFisher(damping: 0.05)).hypergradient(of: problem, at: x, innerSolution: w)
        let sgd = try StochasticImplicit(batchSize: 20, terms: 10, seed: 1).hypergradient(of: problem, at: x, from: w)
        XCTAssertEqual(g.shape, [100, 10])
        for i in [0, 37, 99] { XCTAssertLessThan(relativeError(g[i], gradient(at: w) { cleaning.lowerBatch(x, $0, [i]) }), 1e-12) }
        let closures = cleaning.problem(steps: 50, step: 1)
        let viaClosures = try Implicit(solver: .woodFisher(damping: 0.05)).hypergradient(of: closures, at: x, innerSolution: w)
        XCTAssertLessThan(relativeError(woodFisher.hypergradient, viaClosures.hypergradient), 1e-12)
        let sgdViaClosures = try StochasticImplicit(batchSize: 20, terms: 10, seed: 1).hypergradient(of: closures, at: x, from: w)
        XCTAssertLessThan(relativeError(sgd.hypergradient, sgdViaClosures.hypergradient), 1e-12)
        XCTAssertEqual(Set(problem.stagedPrograms.map(\.derivative)), [
            "lower per-sample gradients ∇ᵧℓₖ, batched over the samples", "upper gradients (∇ₓF, ∇ᵧF)", "mixed product ∇²ₓᵧf·v",
            "lower mini-batch gradients (∇ₓf_B, ∇ᵧf_B) over the gathered samples",
            "lower mini-batch HVP ∇²ᵧᵧf_B·v over the gathered samples",
            "lower mini-batch mixed product ∇²ₓᵧf_B·v over the gathered samples",
        ])
    }
}
