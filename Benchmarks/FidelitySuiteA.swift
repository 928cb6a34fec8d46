import Bilevel
import Workloads

/// BVFIM on P1 and P3 against their exact hypergradients, on the path `BVFIM(scale: s)` for s = 1e-2 and
/// 1e-4 (error O(s)), and the aggregation methods on the two
/// `SeveralMinimisers` problems against their closed forms: `continuum-BDA` (x = 3, optimistic answer 2;
/// rows BDA and plain RAD, which keeps y₂ = 0 and returns 5) and `double-well` (x = 0.5; BDA against the
/// optimistic −1.5, pessimistic-BDA against the pessimistic 0.5).
enum FidelitySuiteA {
    static func run(_ bench: inout Bench) throws {
        let ridge = RidgeWorkload(n: 200, d: 20), p3 = HyperCleaningWorkload()
        let ridgeProblem = ridge.problem(steps: 100), cleaningProblem = p3.problem(steps: 100, step: 15)
        let ridgeExact = ridge.exactHypergradient(ridge.x0).scalars, cleaningExact = p3.exactHypergradient(p3.x0, at: p3.solution(p3.x0)).scalars
        for scale in [1e-2, 1e-4] {
            let bvfim = BVFIM(scale: scale, lowerIterations: 20000)
            try bench.measure("P1-ridge", "BVFIM", size: "200x20 s=\(scale)", reference: ridgeExact) {
                try bvfim.hypergradient(of: ridgeProblem, at: ridge.x0, from: Tensor(zeros: [ridge.d])).hypergradient.scalars
            }
            try bench.measure("P3-cleaning", "BVFIM", size: "n500-m200-d50 s=\(scale)", reference: cleaningExact) {
                try bvfim.hypergradient(of: cleaningProblem, at: p3.x0, from: Tensor(zeros: [p3.d])).hypergradient.scalars
            }
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
