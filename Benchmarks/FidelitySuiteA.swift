import Bilevel
import Workloads

/// BVFIM on P1 and P3 against their exact hypergradients, and the aggregation methods on two small
/// problems with several lower minimisers and closed-form answers (see Tests/BilevelTests/AggregationTests):
/// - `continuum-BDA` (x = 3): `f = ½y₁² − x y₁` leaves y₂ free, `F = ½(x − y₂)² + ½(y₁ − 1)²`; the optimistic
///   hypergradient is x − 1 = 2. Rows: BDA, and plain RAD (which keeps y₂ = 0 and returns 2x − 1 = 5).
/// - `double-well` (x = 0.5): `f = ½(y₁ − x)² + ¼(y₂² − 1)²`, `F = ½(y₁ − 1)² + x y₂`; optimistic x − 2 = −1.5
///   (BDA), pessimistic x = 0.5 (pessimistic-BDA).
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
        let continuum = BilevelProblem(
            upper: { x, y in 0.5 * (x - y.slice(alongAxis: 0, 1..<2)).squaredNorm() + 0.5 * (y.slice(alongAxis: 0, 0..<1) - 1).squaredNorm() },
            lower: { x, y in 0.5 * y.slice(alongAxis: 0, 0..<1).squaredNorm() - dot(x, y.slice(alongAxis: 0, 0..<1)) },
            dynamics: .gradientDescent(step: 0.5), innerSteps: 200)
        let bda = BDA(aggregation: 0.5, upperStep: 1.8, innerStep: 1)
        try bench.measure("continuum-BDA", "BDA", size: "x=3", steps: 200, reference: [2]) {
            try bda.hypergradient(of: continuum, at: Tensor([3.0]), from: y0).hypergradient.scalars
        }
        try bench.measure("continuum-BDA", "RAD", size: "x=3", steps: 200, reference: [2]) {
            try ReverseUnroll().hypergradient(of: continuum, at: Tensor([3.0]), from: y0).hypergradient.scalars
        }
        let doubleWell = BilevelProblem(
            upper: { x, y in 0.5 * (y.slice(alongAxis: 0, 0..<1) - 1).squaredNorm() + dot(x, y.slice(alongAxis: 0, 1..<2)) },
            lower: { x, y in
                let y2 = y.slice(alongAxis: 0, 1..<2)
                return 0.5 * (y.slice(alongAxis: 0, 0..<1) - x).squaredNorm() + 0.25 * ((y2 * y2 - 1) * (y2 * y2 - 1)).sum()
            },
            dynamics: .gradientDescent(step: 0.5), innerSteps: 200)
        try bench.measure("double-well", "BDA", size: "x=0.5", steps: 200, reference: [-1.5]) {
            try BDA(aggregation: 0.5, upperStep: 1, innerStep: 0.5).hypergradient(of: doubleWell, at: Tensor([0.5]), from: y0).hypergradient.scalars
        }
        try bench.measure("double-well", "pessimistic-BDA", size: "x=0.5", steps: 200, reference: [0.5]) {
            try PessimisticBDA(aggregation: 0.5, upperStep: 1, innerStep: 0.5).hypergradient(of: doubleWell, at: Tensor([0.5]), from: y0).hypergradient.scalars
        }
    }
}
