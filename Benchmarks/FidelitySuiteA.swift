import Bilevel
import Workloads

/// BVFIM on P1 and P3 against their exact hypergradients, and the aggregation methods on the two
/// `SeveralMinimisers` problems against their closed forms: `continuum-BDA` (x = 3, optimistic answer 2;
/// rows BDA and plain RAD, which keeps y₂ = 0 and returns 5) and `double-well` (x = 0.5; BDA against the
/// optimistic −1.5, pessimistic-BDA against the pessimistic 0.5).
enum FidelitySuiteA {
    static func run(_ bench: inout Bench) throws {
        let ridge = RidgeWorkload(n: 200, d: 20), p3 = HyperCleaningWorkload()
        let bvfim = BVFIM(scale: 0.01, lowerIterations: 20000)
        let ridgeProblem = ridge.problem(steps: 100)
        try bench.measure("P1-ridge", "BVFIM", size: "200x20", reference: ridge.exactHypergradient(ridge.x0).scalars) {
            try bvfim.hypergradient(of: ridgeProblem, at: ridge.x0, from: Tensor(zeros: [ridge.d])).hypergradient.scalars
        }
        let cleaningProblem = p3.problem(steps: 100, step: 15), wStar = p3.solution(p3.x0)
        try bench.measure("P3-cleaning", "BVFIM", size: "n500-m200-d50", reference: p3.exactHypergradient(p3.x0, at: wStar).scalars) {
            try bvfim.hypergradient(of: cleaningProblem, at: p3.x0, from: Tensor(zeros: [p3.d])).hypergradient.scalars
        }
        let y0 = Tensor(zeros: [2])
        let continuum = SeveralMinimisers.continuum, doubleWell = SeveralMinimisers.doubleWell
        let bda = BDA(aggregation: 0.5, upperStep: 1.8, innerStep: 1)
        try bench.measure("continuum-BDA", "BDA", size: "x=3", steps: 200, reference: [SeveralMinimisers.continuumOptimisticHypergradient(3)]) {
            try bda.hypergradient(of: continuum, at: Tensor([3.0]), from: y0).hypergradient.scalars
        }
        try bench.measure("continuum-BDA", "RAD", size: "x=3", steps: 200, reference: [SeveralMinimisers.continuumOptimisticHypergradient(3)]) {
            try ReverseUnroll().hypergradient(of: continuum, at: Tensor([3.0]), from: y0).hypergradient.scalars
        }
        try bench.measure("double-well", "BDA", size: "x=0.5", steps: 200, reference: [SeveralMinimisers.doubleWellHypergradients(0.5).optimistic]) {
            try BDA(aggregation: 0.5, upperStep: 1, innerStep: 0.5).hypergradient(of: doubleWell, at: Tensor([0.5]), from: y0).hypergradient.scalars
        }
        try bench.measure("double-well", "pessimistic-BDA", size: "x=0.5", steps: 200, reference: [SeveralMinimisers.doubleWellHypergradients(0.5).pessimistic]) {
            try PessimisticBDA(aggregation: 0.5, upperStep: 1, innerStep: 0.5).hypergradient(of: doubleWell, at: Tensor([0.5]), from: y0).hypergradient.scalars
        }
    }
}
