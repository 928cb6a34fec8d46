import Foundation
import XCTest
@testable import Bilevel
import Workloads

/// `derivatives: .staged` against `.eager`: every hypergradient method gives the same hypergradient (to
/// rounding) with the same derivative counts; a lower objective that reads a value falls back to eager
/// evaluation and says so; a long unroll replays fixed-size programs; threads share one staged problem.
final class StagedOracleTests: XCTestCase {
    /// The problem with staged derivatives (a fresh program cache).
    func staged(_ problem: BilevelProblem) -> BilevelProblem {
        var staged = problem
        staged.derivatives = .staged
        return staged
    }

    /// Runs `method` on `problem` eagerly and staged, asserts equal hypergradients (≤ 1e-12 relative),
    /// equal inner solutions and identical counts, and that the staged run used staged programs only
    /// (unless `staging` is false: a method that builds its own problem, as BDA does, queries that one).
    func assertStagedMatchesEager(
        _ method: any HypergradientMethod, _ problem: BilevelProblem, at x: Tensor, from y0: Tensor, staging: Bool = true,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let stagedProblem = staged(problem)
        let eager = try method.hypergradient(of: problem, at: x, from: y0)
        let replayed = try method.hypergradient(of: stagedProblem, at: x, from: y0)
        XCTAssertLessThanOrEqual(relativeError(replayed.hypergradient, eager.hypergradient), 1e-12, "\(method.name)", file: file, line: line)
        XCTAssertLessThanOrEqual(relativeError(replayed.innerSolution, eager.innerSolution), 1e-12, "\(method.name)", file: file, line: line)
        XCTAssertEqual(replayed.diagnostics.counts, eager.diagnostics.counts, "\(method.name)", file: file, line: line)
        XCTAssertEqual(stagedProblem.stagedPrograms.isEmpty, !staging, "\(method.name): \(stagedProblem.stagedPrograms)", file: file, line: line)
        XCTAssertTrue(stagedProblem.stagedPrograms.allSatisfy { $0.fallbackReason == nil }, "\(stagedProblem.stagedPrograms)", file: file, line: line)
        XCTAssertFalse(replayed.diagnostics.notes.contains { $0.contains("could not be staged") }, file: file, line: line)
    }

    func testEveryMethodStagedEqualsEagerWithTheSameCounts() throws {
        let ridge = Fixtures.Ridge(n: 40, d: 6), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        let problem = ridge.problem(steps: 20)
        let methods: [any HypergradientMethod] = [
            ReverseUnroll(), TruncatedReverseUnroll(truncation: 5), ForwardUnroll(), OneStage(), FirstOrderUnroll(),
            Implicit(solver: ConjugateGradient(maxIterations: 20, tolerance: 1e-12)),
            Implicit(solver: NeumannSeries(terms: 30, step: ridge.eta)),
            Implicit(solver: FixedPointSolver(iterations: 30, step: ridge.eta)),
            Implicit(solver: ExactSolve()), Implicit(solver: HessianFree(lambda: 1)),
            BOME(jointStep: ridge.eta, innerSteps: 20), F2SA(multiplier: 20), PBGD(penalty: 10, innerSteps: 20),
        ]
        for method in methods { try assertStagedMatchesEager(method, problem, at: x, from: y0) }
        for method: any HypergradientMethod in [BDA(aggregation: 0.3, upperStep: 1), PessimisticBDA(aggregation: 0.3, upperStep: 1)] {
            try assertStagedMatchesEager(method, problem, at: x, from: y0, staging: false)
        }
        let momentum = ridge.problem(steps: 15, dynamics: .momentum(step: 0.1, beta: 0.5))
        for method: any HypergradientMethod in [ReverseUnroll(), ForwardUnroll(), TruncatedReverseUnroll(truncation: 4)] {
            try assertStagedMatchesEager(method, momentum, at: x, from: y0)
        }
        try assertStagedMatchesEager(SignUnroll(), ridge.signProblem(steps: 20), at: x, from: y0)
        try assertStagedMatchesEager(BVFIM(scale: 0.1, barrierIterations: 50), problem, at: x, from: y0)
        var batched = problem
        batched.lowerBatch = ridge.lowerBatch
        batched.lowerSampleCount = ridge.n
        try assertStagedMatchesEager(StochasticImplicit(batchSize: 10, seed: 3), batched, at: x, from: y0)
        try assertStagedMatchesEager(KKTImplicit(solver: .exact), ridge.boxProblem(), at: x, from: y0)
        try assertStagedMatchesEager(ReverseUnroll(), ridge.problem(steps: 20, dynamics: ridge.fusedGradientDescent), at: x, from: y0)
    }

    /// The staged RAD is still the derivative of the unrolled map: it matches central differences of
    /// `x ↦ F(x, y_T(x))` (so a staged program with a wrong rule cannot agree with eager by accident).
    func testStagedRADMatchesFiniteDifferences() throws {
        let ridge = Fixtures.Ridge(n: 30, d: 4), y0 = Tensor(zeros: [ridge.d])
        let problem = staged(ridge.problem(steps: 10))
        let result = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: y0)
        let reference = try finiteDifferenceGradient(at: ridge.x0) { try unrolledObjective(problem, $0, from: y0) }
        XCTAssertLessThan(relativeError(result.hypergradient, reference), 1e-7)
    }

    func testALowerObjectiveThatReadsAValueFallsBackToEagerAndSaysWhy() throws {
        let ridge = Fixtures.Ridge(n: 30, d: 4), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        // A data-dependent branch: staging cannot know which side the values take.
        let lower: (Tensor, Tensor) -> Tensor = { x, w in
            (x * x).sum().scalar > 100 ? 2 * ridge.lower(x, w) : ridge.lower(x, w)
        }
        let eagerProblem = BilevelProblem(upper: ridge.upper, lower: lower, dynamics: .gradientDescent(step: ridge.eta), innerSteps: 10)
        let stagedProblem = staged(eagerProblem)
        for method: any HypergradientMethod in [ReverseUnroll(), Implicit(solver: ConjugateGradient(maxIterations: 10, tolerance: 0))] {
            let eager = try method.hypergradient(of: eagerProblem, at: x, from: y0)
            let fallback = try method.hypergradient(of: stagedProblem, at: x, from: y0)
            XCTAssertLessThanOrEqual(relativeError(fallback.hypergradient, eager.hypergradient), 1e-12, method.name)
            XCTAssertEqual(fallback.diagnostics.counts, eager.diagnostics.counts, method.name)
            let note = fallback.diagnostics.notes.first { $0.contains("could not be staged") }
            XCTAssertNotNil(note, "\(fallback.diagnostics.notes)")
            XCTAssertTrue(note?.contains("Tensor.scalars") ?? false, note ?? "")
            XCTAssertTrue(note?.contains("evaluated eagerly") ?? false, note ?? "")
        }
        let summaries = stagedProblem.stagedPrograms
        XCTAssertTrue(summaries.contains { $0.derivative.contains("upper gradients") && $0.applicationCount != nil }, "\(summaries)")
        XCTAssertTrue(summaries.contains { $0.derivative.contains("step VJP") && $0.fallbackReason != nil }, "\(summaries)")
    }

    func testAttemptStageReportsTheReadAndPlainStageStillStages() {
        let attempt = attemptStage(shapes: [[3]]) { a in [a[0].sum().scalar > 0 ? a[0] : -a[0]] }
        guard case let .failure(error) = attempt else { return XCTFail("staging a branch on data succeeded") }
        XCTAssertEqual(error.operation, "scalars")
        XCTAssertEqual(error.shape, [])
        let program = try? attemptStage(shapes: [[3]]) { a in [exp(a[0]).sum()] }.get()
        XCTAssertEqual(program?(Tensor([0, 0, 0])).scalar, 3)
    }

    /// T = 1000 RAD replays the same few programs as T = 10: nothing grows with T.
    func testLongUnrollReplaysFixedSizePrograms() throws {
        let ridge = Fixtures.Ridge(n: 20, d: 3), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        var problem = staged(ridge.problem(steps: 10))
        let short = try ReverseUnroll().hypergradient(of: problem, at: x, from: y0)
        let afterShort = problem.stagedPrograms
        problem.innerSteps = 1000
        let long = try ReverseUnroll().hypergradient(of: problem, at: x, from: y0)
        XCTAssertEqual(long.diagnostics.counts.vjps, 1000)
        XCTAssertEqual(short.diagnostics.counts.vjps, 10)
        let afterLong = problem.stagedPrograms
        XCTAssertEqual(afterLong.map(\.derivative), afterShort.map(\.derivative))
        XCTAssertEqual(afterLong.map(\.applicationCount), afterShort.map(\.applicationCount))
        XCTAssertEqual(Set(afterLong.map(\.derivative)), ["inner step Ψ(s, x)", "upper gradients (∇ₓF, ∇ᵧF)", "step VJP (Aᵀλ, Bᵀλ)"])
        let fresh = staged(ridge.problem(steps: 1000))
        _ = try ReverseUnroll().hypergradient(of: fresh, at: x, from: y0)
        XCTAssertEqual(fresh.stagedPrograms.map(\.applicationCount), afterShort.map(\.applicationCount))
        XCTAssertTrue(afterLong.allSatisfy { ($0.applicationCount ?? .max) < 100 }, "\(afterLong)")
        let eager = try ReverseUnroll().hypergradient(of: ridge.problem(steps: 1000), at: x, from: y0)
        XCTAssertLessThanOrEqual(relativeError(long.hypergradient, eager.hypergradient), 1e-12)
    }

    /// Staged FAD advances all d tangent columns in one batched replay per step: it stages the batched
    /// tangent program (and not the per-column one), counts d·T JVPs, and equals eager FAD and RAD.
    func testStagedFADBatchesItsTangentColumns() throws {
        let ridge = Fixtures.Ridge(n: 20, d: 3), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        let problem = staged(ridge.problem(steps: 40))
        let forward = try ForwardUnroll().hypergradient(of: problem, at: x, from: y0)
        let names = problem.stagedPrograms.map(\.derivative)
        XCTAssertTrue(names.contains(StagedDerivative.stepTangents.rawValue), "\(names)")
        XCTAssertFalse(names.contains(StagedDerivative.stepTangent.rawValue), "\(names)")
        XCTAssertEqual(forward.diagnostics.counts.jvps, 3 * 40)
        let eager = try ForwardUnroll().hypergradient(of: ridge.problem(steps: 40), at: x, from: y0)
        let reverse = try ReverseUnroll().hypergradient(of: ridge.problem(steps: 40), at: x, from: y0)
        XCTAssertLessThanOrEqual(relativeError(forward.hypergradient, eager.hypergradient), 1e-12)
        XCTAssertLessThanOrEqual(relativeError(forward.hypergradient, reverse.hypergradient), 1e-12)
    }

    /// Copies share the staged programs; setting a closure starts afresh (a stale program would compute
    /// the old objective's derivative).
    func testSettingAClosureDropsTheStagedPrograms() throws {
        let ridge = Fixtures.Ridge(n: 20, d: 3), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        var problem = staged(ridge.problem(steps: 5))
        _ = try ReverseUnroll().hypergradient(of: problem, at: x, from: y0)
        let copy = problem
        XCTAssertEqual(copy.stagedPrograms.count, 3)
        problem.lower = { x, w in 2 * ridge.lower(x, w) }
        XCTAssertTrue(problem.stagedPrograms.isEmpty)
        XCTAssertEqual(copy.stagedPrograms.count, 3)
        let doubled = try ReverseUnroll().hypergradient(of: problem, at: x, from: y0)
        var eager = problem
        eager.derivatives = .eager
        let reference = try ReverseUnroll().hypergradient(of: eager, at: x, from: y0)
        XCTAssertLessThanOrEqual(relativeError(doubled.hypergradient, reference.hypergradient), 1e-12)
        let original = try ReverseUnroll().hypergradient(of: ridge.problem(steps: 5), at: x, from: y0)
        XCTAssertGreaterThan(relativeError(doubled.hypergradient, original.hypergradient), 1e-3)
    }

    /// A holder that lets the test hand one (non-`Sendable`) problem to two threads on purpose.
    final class Shared: @unchecked Sendable {
        let problem: BilevelProblem
        private let lock = NSLock()
        private var results: [Int: [Double]] = [:]
        init(_ problem: BilevelProblem) { self.problem = problem }
        func store(_ value: [Double], at index: Int) { lock.withLock { results[index] = value } }
        func value(at index: Int) -> [Double]? { lock.withLock { results[index] } }
    }

    func testTwoThreadsShareOneStagedProblem() throws {
        let ridge = Fixtures.Ridge(n: 30, d: 5), x = ridge.x0, y0 = Tensor(zeros: [ridge.d])
        let eagerProblem = ridge.problem(steps: 30)
        let shared = Shared(staged(eagerProblem))
        let methods: [any HypergradientMethod & Sendable] = [ReverseUnroll(), ForwardUnroll(), Implicit(solver: ConjugateGradient(maxIterations: 10, tolerance: 0))]
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for (k, method) in methods.enumerated() {
                for repeat_ in 0..<3 {
                    if let g = try? method.hypergradient(of: shared.problem, at: x, from: y0).hypergradient.scalars {
                        shared.store(g, at: worker * 100 + k * 10 + repeat_)
                    }
                }
            }
        }
        for (k, method) in methods.enumerated() {
            let eager = try method.hypergradient(of: eagerProblem, at: x, from: y0).hypergradient
            for worker in 0..<2 {
                for repeat_ in 0..<3 {
                    guard let g = shared.value(at: worker * 100 + k * 10 + repeat_) else { XCTFail("\(method.name) threw on worker \(worker)"); continue }
                    XCTAssertLessThanOrEqual(relativeError(Tensor(shape: x.shape, scalars: g), eager), 1e-12, method.name)
                }
            }
        }
        let names = shared.problem.stagedPrograms.map { "\($0.derivative) \($0.shapes)" }
        XCTAssertEqual(names.count, Set(names).count, "a derivative was staged twice: \(names)")
    }

    /// The snippet of Docs/bilevel.md, "Staged derivatives", run verbatim.
    func testDocumentationSnippet() throws {
        let ridge = RidgeWorkload(n: 200, d: 20)
        var problem = ridge.problem(steps: 100)
        problem.derivatives = .staged                  // stage each derivative once, then replay it
        let w0 = Tensor(zeros: [20])
        let rad = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: w0)
        let cg = try Implicit(solver: .conjugateGradient()).hypergradient(of: problem, at: ridge.x0, from: w0)
        for program in problem.stagedPrograms { print(program) }   // "step VJP (Aᵀλ, Bᵀλ) [[20], [20], [20]]: 6 ops, …"
        XCTAssertEqual(rad.diagnostics.counts.vjps, 100)
        XCTAssertLessThan(relativeError(rad.hypergradient, ridge.unrolledHypergradient(ridge.x0, steps: 100)), 1e-12)
        XCTAssertLessThan(relativeError(cg.hypergradient, ridge.exactHypergradient(ridge.x0)), 1e-2)
        XCTAssertEqual(problem.stagedPrograms.map(\.derivative), [
            "inner step Ψ(s, x)", "upper gradients (∇ₓF, ∇ᵧF)", "step VJP (Aᵀλ, Bᵀλ)",
            "lower HVP ∇²ᵧᵧf·v", "mixed product ∇²ₓᵧf·v",
        ])
    }
}
