import Bilevel
import Foundation
import Workloads

/// The seeds' remaining methods (scheduled F2SA, F³SA, the stochastic implicit gradient, the
/// prox-smoothed penalty, MORBiT) and the measured Table 4 of Liu et al. 2021 (survey) (time and memory of the
/// hypergradient methods swept over T, J and the size), with fitted log–log exponents in the notes.
enum FidelitySuiteB {
    static func run(_ bench: inout Bench) throws {
        try penaltySchedules(&bench)
        try stochasticImplicit(&bench)
        try proxPenalty(&bench)
        try robustMultiTask(&bench)
        try Table4Sweep.run(&bench)
    }

    /// P1 restricted to the box [−5, 0]ᵈ, 300 outer steps from x0: `F(x_K, w*(x_K))` against the box
    /// optimum (projected gradient descent with the closed-form hypergradient, 1500 steps).
    static func penaltySchedules(_ bench: inout Bench) throws {
        let names = ["F2SA-scheduled", "F3SA", "F3SA-stochastic-b20"]
        guard names.contains(where: { bench.options.selects("P1-ridge-box", $0, "200x20") }) else { return }
        let ridge = RidgeWorkload(), zero = Tensor(zeros: [ridge.d])
        let box = { (x: Tensor) in Tensor(shape: x.shape, scalars: x.scalars.map { min(max($0, -5), 0) }) }
        func hyperobjective(_ x: Tensor) -> Double { ridge.upper(x, ridge.solution(x)).scalar }
        var reference = ridge.x0
        for _ in 0..<1500 { reference = box(reference - 20 * ridge.exactHypergradient(reference)) }
        let best = [hyperobjective(reference)]
        func schedule(_ exponents: (a: Double, c: Double)) -> PenaltySchedule {
            PenaltySchedule(multiplier: 10, lowerStep: ridge.eta, stepExponent: exponents.a, lowerStepExponent: exponents.c, offset: 10, ratio: 250)
        }
        let runs: [(String, () throws -> PenaltyTrajectory)] = [
            ("F2SA-scheduled", { try ScheduledF2SA(schedule: schedule(PenaltySchedule.f2saExponents(.exact)), innerSteps: 2)
                .minimize(ridge.problem(steps: 1), from: ridge.x0, y0: zero, steps: 300, projection: box) }),
            ("F3SA", { try F3SA(schedule: schedule(PenaltySchedule.f3saExponents(.exact)))
                .minimize(ridge.problem(steps: 1), from: ridge.x0, y0: zero, steps: 300, projection: box) }),
            ("F3SA-stochastic-b20", { try F3SA(schedule: schedule(PenaltySchedule.f3saExponents(.upperAndLower)), batchSize: 20, seed: 1)
                .minimize(ridge.stochasticProblem(steps: 1), from: ridge.x0, y0: zero, steps: 300, projection: box) }),
        ]
        for (name, body) in runs {
            try bench.measure("P1-ridge-box", name, size: "200x20", steps: 300, reference: best) { [hyperobjective(try body().x)] }
        }
        bench.notes.append("P1-ridge-box: error = relative gap of F(x_K, w*(x_K)) to the box optimum \(String(format: "%.5g", best[0])) (F(x0) = \(String(format: "%.5g", hyperobjective(ridge.x0))))")
    }

    /// Seed 000 Algorithm 3 on P1 from w*(x0) (T = 30 SGD steps with η = 0.1, K = 60 Neumann terms):
    /// time and error of one seed per batch size; the notes give the variance over 20 seeds against b.
    static func stochasticImplicit(_ bench: inout Bench) throws {
        let ridge = RidgeWorkload(), problem = ridge.stochasticProblem(steps: 30), y0 = ridge.solution(ridge.x0)
        let exact = ridge.exactHypergradient(ridge.x0)
        func method(_ batch: Int, _ seed: Int) -> StochasticImplicit {
            StochasticImplicit(batchSize: batch, innerStep: 0.1, terms: 60, neumannStep: 0.1, seed: UInt64(seed))
        }
        var variances: [String] = []
        for batch in [5, 20, 80] where bench.options.selects("P1-ridge", "implicit-stochastic-b\(batch)", "200x20") {
            try bench.measure("P1-ridge", "implicit-stochastic-b\(batch)", size: "200x20", steps: 30, reference: exact.scalars) {
                try method(batch, 1).hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient.scalars
            }
            let draws = try (0..<20).map { try method(batch, $0).hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient }
            let mean = draws.reduce(Tensor(zeros: exact.shape), +) / 20
            let variance = draws.map { ($0 - mean).squaredNorm().scalar }.reduce(0, +) / 19
            variances.append("b = \(batch): \(String(format: "%.3e", variance)) (relative \(String(format: "%.3f", variance / exact.squaredNorm().scalar)))")
        }
        if !variances.isEmpty {
            bench.notes.append("P1-ridge implicit-stochastic: variance (trace of the covariance over 20 seeds) " + variances.joined(separator: ", "))
        }
    }

    /// The talk's nonconvex example (x, y ∈ [−1, 1], F = x² + y², f = x y) at x = 0.1, σ = 0.1: the
    /// direction/σ after 300 steps against the closed-form envelope slope ψ_σ'(0.1) = 5.2.
    static func proxPenalty(_ bench: inout Bench) throws {
        let problem = BilevelProblem(upper: { x, y in (x * x + y * y).sum() }, lower: { x, y in (x * y).sum() })
        let clip = { (t: Tensor) in Tensor(shape: t.shape, scalars: t.scalars.map { min(max($0, -1), 1) }) }
        for inner in [20, nil] as [Int?] {
            let method = ProxPenalty(
                proximal: 1, penalty: 0.1, penaltyExponent: 0, upperStep: 1e-12, lowerStep: 0.5, innerSteps: inner, lowerProjection: clip)
            try bench.measure("kwon-example", method.name, size: "scalar", steps: 300, reference: [5.2]) {
                [try method.minimize(problem, from: Tensor([0.1]), y0: Tensor([0.0]), steps: 300).estimates.last!.scalar]
            }
        }
    }

    /// MORBiT on three tasks `F_i = ½‖θ − c_i‖²` (c = (0,0), (4,0), (1,1); lower curvatures 1, 2, 0.5),
    /// 600 steps: θ against the minimax point (2, 0).
    static func robustMultiTask(_ bench: inout Bench) throws {
        guard bench.options.selects("robust-3task", "MORBiT", "n3-d2") else { return }
        let tasks = zip([[0.0, 0], [4, 0], [1, 1]], [1.0, 2, 0.5]).map { centre, a in
            BilevelProblem(upper: { _, phi in 0.5 * (phi - Tensor(centre)).squaredNorm() }, lower: { theta, phi in 0.5 * a * (phi - theta).squaredNorm() })
        }
        let method = MORBiT(solver: ExactSolve(), upperStep: 0.2, lowerStep: 0.5, weightStep: 0.05)
        try bench.measure("robust-3task", "MORBiT", size: "n3-d2", steps: 600, reference: [2, 0]) {
            try method.minimize(tasks: tasks, from: Tensor([1.0, 2]), y0s: Array(repeating: Tensor(zeros: [2]), count: 3), steps: 600).x.scalars
        }
    }
}
