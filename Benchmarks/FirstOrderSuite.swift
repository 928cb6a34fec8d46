import Bilevel
import Workloads

/// The first-order methods (F2SA, BOME, PBGD, BDA) and the stochastic Neumann solver on P1 and P3: time
/// per call (one outer step's worth of work), error against the exact hypergradient, and — in the notes
/// after the table — `F(x, y*(x))` after `outerSteps` Adam outer steps.
///
/// BOME's x-direction adapts its multiplier to the current y, so it is not an estimate of ∇F(x): its
/// error column is `nan`. PBGD is timed and checked at the stationary y of its own y-update
/// (`argmin_y F + γ f`), where its x-gradient is the penalty estimate with bias O(1/γ).
enum FirstOrderSuite {
    /// Outer steps of the runs reported in the notes.
    static let outerSteps = 20

    /// One row: how to time one call, its error reference, and the method for outer step k.
    struct Case {
        let method: String
        let steps: Int
        let hasReference: Bool
        let call: () throws -> Tensor
        let atStep: (Int) -> any HypergradientMethod
    }

    static func run(_ bench: inout Bench) throws {
        for size in bench.options.quick ? [RidgeWorkload.sizes[0]] : Array(RidgeWorkload.sizes[0...1]) {
            try ridge(&bench, RidgeWorkload(n: size.n, d: size.d))
        }
        try hyperCleaning(&bench)
    }

    /// P1 with gradient steps η = 1/L; F2SA and BDA from w = 0, BOME from w*, PBGD from its stationary y.
    static func ridge(_ bench: inout Bench, _ ridge: RidgeWorkload) throws {
        let x = ridge.x0, eta = ridge.eta, problem = ridge.problem(steps: 100), wStar = ridge.solution(x)
        let zero = Tensor(zeros: [ridge.d])
        let f2sa = F2SA(multiplier: 1000, innerSteps: 300), bome = BOME(jointStep: eta, innerSteps: 20)
        let pbgd = PBGD(penalty: 10, innerSteps: 20), bda = BDA(aggregation: 0.5, upperStep: eta)
        let yGamma = try PBGD(penalty: 10, penaltySteps: 3000, innerSteps: 1).hypergradient(of: problem, at: x, from: wStar).innerSolution
        let neumann = { (seed: Int) in Implicit(solver: StochasticNeumann(terms: 40, step: eta, samples: 10, seed: UInt64(seed))) }
        try rows(&bench, "P1-ridge", "\(ridge.n)x\(ridge.d)", problem, x: x, wStar: wStar, exact: ridge.exactHypergradient(x).scalars,
                 lowerSolution: ridge.solution, cases: [
            Case(method: "F2SA", steps: 300, hasReference: true, call: { try f2sa.hypergradient(of: problem, at: x, from: zero).hypergradient },
                 atStep: F2SA(multiplier: 100, innerSteps: 300).increasingMultiplier(by: 50)),
            Case(method: "BOME", steps: 20, hasReference: false, call: { try bome.hypergradient(of: problem, at: x, from: wStar).hypergradient },
                 atStep: { _ in bome }),
            Case(method: "PBGD", steps: 20, hasReference: true, call: { try pbgd.hypergradient(of: problem, at: x, from: yGamma).hypergradient },
                 atStep: { _ in pbgd }),
            Case(method: "BDA", steps: 100, hasReference: true, call: { try bda.hypergradient(of: problem, at: x, from: zero).hypergradient },
                 atStep: { _ in bda }),
            Case(method: "neumann-stochastic", steps: 40, hasReference: true,
                 call: { try neumann(1).hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient }, atStep: neumann),
        ])
    }

    /// P3 (n = 500, m = 200, d = 50) with gradient steps 15, as the P3 rows of `BilevelSuite`.
    static func hyperCleaning(_ bench: inout Bench) throws {
        let p3 = HyperCleaningWorkload(), x = p3.x0, problem = p3.problem(steps: 100, step: 15), wStar = p3.solution(x)
        let zero = Tensor(zeros: [p3.d])
        let f2sa = F2SA(multiplier: 1000, innerSteps: 300), stochastic = F2SA(multiplier: 10, innerSteps: 300, batchSize: 100, seed: 1)
        let bome = BOME(jointStep: 15, innerSteps: 50), pbgd = PBGD(penalty: 10, innerSteps: 50), bda = BDA(aggregation: 0.5, upperStep: 15)
        let yGamma = try PBGD(penalty: 10, penaltySteps: 3000, innerSteps: 1).hypergradient(of: problem, at: x, from: wStar).innerSolution
        let neumann = { (seed: Int) in Implicit(solver: StochasticNeumann(terms: 50, step: 15, samples: 10, batchSize: 50, seed: UInt64(seed))) }
        try rows(&bench, "P3-cleaning", "n500-m200-d50", problem, x: x, wStar: wStar, exact: p3.exactHypergradient(x, at: wStar).scalars,
                 lowerSolution: p3.solution, cases: [
            Case(method: "F2SA", steps: 300, hasReference: true, call: { try f2sa.hypergradient(of: problem, at: x, from: zero).hypergradient },
                 atStep: F2SA(multiplier: 100, innerSteps: 300).increasingMultiplier(by: 50)),
            Case(method: "F2SA-stochastic", steps: 300, hasReference: true,
                 call: { try stochastic.hypergradient(of: problem, at: x, from: zero).hypergradient },
                 atStep: F2SA(multiplier: 10, innerSteps: 300, batchSize: 100, seed: 1).increasingMultiplier(by: 1)),
            Case(method: "BOME", steps: 50, hasReference: false, call: { try bome.hypergradient(of: problem, at: x, from: wStar).hypergradient },
                 atStep: { _ in bome }),
            Case(method: "PBGD", steps: 50, hasReference: true, call: { try pbgd.hypergradient(of: problem, at: x, from: yGamma).hypergradient },
                 atStep: { _ in pbgd }),
            Case(method: "BDA", steps: 100, hasReference: true, call: { try bda.hypergradient(of: problem, at: x, from: zero).hypergradient },
                 atStep: { _ in bda }),
            Case(method: "neumann-stochastic", steps: 50, hasReference: true,
                 call: { try neumann(1).hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient }, atStep: neumann),
        ])
    }

    /// Times every selected case against the plain function `f + F` at w* (ratio column), then runs
    /// `outerSteps` Adam(0.1) steps of each from x0 with y warm-started at w*(x0), and notes `F(x, y*(x))`.
    /// The F2SA runs use Algorithm 1's increasing multiplier (λ_k = 100 + 50k; stochastic: λ_k = 10 + k,
    /// as its variance grows with λ), the stochastic methods a fresh seed per step.
    static func rows(
        _ bench: inout Bench, _ workload: String, _ size: String, _ problem: BilevelProblem, x: Tensor, wStar: Tensor,
        exact: [Double], lowerSolution: (Tensor) -> Tensor, cases: [Case]
    ) throws {
        let selected = cases.filter { bench.options.selects(workload, $0.method, size) }
        guard !selected.isEmpty else { return }
        let base = Measurement.run(repeats: bench.options.repeats) { _ = (problem.lower(x, wStar) + problem.upper(x, wStar)).scalar }.median
        var finals: [String] = []
        for c in selected {
            try bench.measure(workload, c.method, size: size, steps: c.steps, baseline: base, reference: c.hasReference ? exact : nil) {
                try c.call().scalars
            }
            let run = try minimize(problem, methodAtStep: c.atStep, from: x, y0: wStar, optimizer: .adam(step: 0.1), steps: outerSteps, warmStart: true)
            let xK = run.x
            finals.append("\(c.method) \(format(problem.upper(xK, lowerSolution(xK)).scalar))")
        }
        bench.notes.append(
            "\(workload) \(size): F(x, y*(x)) after \(outerSteps) Adam(0.1) outer steps from x0 (warm start at y*(x0); "
                + "F = \(format(problem.upper(x, wStar).scalar)) at x0): " + finals.joined(separator: ", "))
    }

    private static func format(_ v: Double) -> String { String(format: "%.4g", v) }
}
