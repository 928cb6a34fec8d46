import Bilevel
import Foundation
import Workloads

/// Table 4 of Liu et al. 2021 (survey), measured: time and peak memory of every implemented
/// row swept over the inner steps T (ridge 200x20, T = 100…800), the solver iterations J (ridge
/// 1000x100 at w*, J = 10…80) and the size d = |x| = |y| (ridge with 5d rows, d = 25…400, T = 20,
/// J = 20; FAD up to d = 100). The notes give each method's fitted log–log exponents — of the minimum
/// time (robust to other load on the machine) and of the peak memory growth — next to the table's
/// predictions; with `--svg out.svg` the chart of the three sweeps goes to `out-table4.svg`.
enum Table4Sweep {
    /// One measured cell: the sweep ("T", "J" or "n"), the method, the swept value, minimum ms, peak MB.
    struct Point {
        let sweep: String, method: String, value: Double, milliseconds: Double, megabytes: Double
    }

    /// Table 4's predicted (time, space) exponents per sweep and method, as text (m = n = d here).
    static let predicted: [String: [String: String]] = [
        "T": ["function": "1 / 0", "RAD": "1 / 1", "BDA": "1 / 1", "TRAD": "1 (T forward steps; O(n(m+n)M) backward) / 0",
              "FAD": "1 / 0", "one-stage": "0 / 0", "BVFIM": "1 (Q₁ = Q₂ = T) / 0"],
        "J": ["implicit-cg": "1 / 0", "implicit-neumann": "1 / 0"],
        "n": ["RAD": "2 / 1", "BDA": "2 / 1", "TRAD": "2 / 1", "FAD": "3 / 2", "implicit-cg": "2 / 1",
              "implicit-neumann": "2 / 1", "one-stage": "2 / 1", "BVFIM": "2 / 1"],
    ]

    static func run(_ bench: inout Bench) throws {
        var points: [Point] = []
        let small = RidgeWorkload(n: 200, d: 20)
        for steps in [100, 200, 400, 800] { points += try unrolled(&bench, small, steps: steps, sweep: "T", value: steps) }
        let large = RidgeWorkload(n: 1000, d: 100)
        for iterations in [10, 20, 40, 80] { points += try implicit(&bench, large, iterations: iterations, sweep: "J", value: iterations) }
        for d in [25, 50, 100, 200, 400] {
            let ridge = RidgeWorkload(n: 5 * d, d: d)
            points += try unrolled(&bench, ridge, steps: 20, sweep: "n", value: d)
            points += try implicit(&bench, ridge, iterations: 20, sweep: "n", value: d)
        }
        guard !points.isEmpty else { return }
        for sweep in ["T", "J", "n"] {
            let methods = points.filter { $0.sweep == sweep }.map(\.method).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let fits = methods.compactMap { method -> String? in
                let cells = points.filter { $0.sweep == sweep && $0.method == method }
                guard cells.count >= 3 else { return nil }
                let time = logLogSlope(cells.map(\.value), cells.map(\.milliseconds))
                let space = logLogSlope(cells.map(\.value), cells.map { max($0.megabytes, 0.01) })
                return "\(method) \(String(format: "%.2f / %.2f", time, space)) (predicted \(predicted[sweep]?[method] ?? "?"))"
            }
            bench.notes.append("Table 4 fit in \(sweep) (time / space exponent): " + fits.joined(separator: "; "))
        }
        if let path = bench.options.svgPath {
            let target = (path.hasSuffix(".svg") ? String(path.dropLast(4)) : path) + "-table4.svg"
            try chart(points).write(toFile: target, atomically: true, encoding: .utf8)
        }
    }

    /// T plain steps (T sweep only), RAD, TRAD (M = 10), BDA (μ = 0.5), one-stage, BVFIM (s = 1e-2 with
    /// exactly Q₁ = Q₂ = T iterations: tolerance 1e-300), and FAD in the T sweep and up to d = 100 in the size sweep,
    /// all from w = 0.
    static func unrolled(_ bench: inout Bench, _ ridge: RidgeWorkload, steps: Int, sweep: String, value: Int) throws -> [Point] {
        let problem = ridge.problem(steps: steps), x = ridge.x0, w0 = Tensor(zeros: [ridge.d]), oracle = BilevelOracle(problem)
        let methods: [(String, any HypergradientMethod)] = [
            ("RAD", ReverseUnroll()), ("TRAD", TruncatedReverseUnroll(truncation: 10)), ("BDA", BDA(aggregation: 0.5, upperStep: ridge.eta)),
            ("one-stage", OneStage()),
            ("BVFIM", BVFIM(scale: 1e-2, lowerIterations: steps, barrierIterations: steps, tolerance: 1e-300)),
        ] + (ridge.d * steps <= 2000 || steps >= 100 ? [("FAD", ForwardUnroll())] : [])
        var points: [Point] = []
        let workload = "T4-\(sweep)", size = "\(ridge.n)x\(ridge.d)"
        if sweep == "T", try bench.measure(workload, "function", size: size, steps: steps, { try oracle.unroll(from: w0, x, steps: steps, like: w0).final.scalars }) != nil {
            points.append(point(bench, sweep, "function", value))
        }
        for (name, method) in methods {
            if try bench.measure(workload, name, size: size, steps: steps, { try method.hypergradient(of: problem, at: x, from: w0).hypergradient.scalars }) != nil {
                points.append(point(bench, sweep, name, value))
            }
        }
        return points
    }

    /// CG (tolerance 0, exactly J products) and Neumann (J terms, step η) at w*.
    static func implicit(_ bench: inout Bench, _ ridge: RidgeWorkload, iterations: Int, sweep: String, value: Int) throws -> [Point] {
        let problem = ridge.problem(steps: 1), x = ridge.x0, wStar = ridge.solution(x)
        let cg = Implicit(solver: ConjugateGradient(maxIterations: iterations, tolerance: 0))
        let neumann = Implicit(solver: NeumannSeries(terms: iterations, step: ridge.eta))
        var points: [Point] = []
        let workload = "T4-\(sweep)", size = "\(ridge.n)x\(ridge.d)"
        if try bench.measure(workload, "implicit-cg", size: size, steps: iterations, { try cg.hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient.scalars }) != nil {
            points.append(point(bench, sweep, "implicit-cg", value))
        }
        if try bench.measure(workload, "implicit-neumann", size: size, steps: iterations, { try neumann.hypergradient(of: problem, at: x, innerSolution: wStar).hypergradient.scalars }) != nil {
            points.append(point(bench, sweep, "implicit-neumann", value))
        }
        return points
    }

    /// The point of the row just measured.
    private static func point(_ bench: Bench, _ sweep: String, _ method: String, _ value: Int) -> Point {
        let row = bench.rows.last!
        return Point(sweep: sweep, method: method, value: Double(value), milliseconds: row.minMs, megabytes: row.peakMB)
    }

    /// Time against T, J and d, one line per method.
    static func chart(_ points: [Point]) -> String {
        func panel(_ sweep: String, _ title: String, _ label: String) -> SVGChart.Panel {
            let cells = points.filter { $0.sweep == sweep }
            let methods = cells.map(\.method).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            return .init(title: title, xLabel: label, yLabel: "minimum time (ms)", series: methods.map { m in
                .init(name: m, points: cells.filter { $0.method == m }.map { ($0.value, $0.milliseconds) })
            })
        }
        return SVGChart(panels: [
            panel("T", "Table 4 in T (ridge 200x20)", "inner steps T"),
            panel("J", "Table 4 in J (ridge 1000x100, at w*)", "solver iterations J"),
            panel("n", "Table 4 in size (5d rows, T = 20, J = 20)", "d = |x| = |y|"),
        ]).svg
    }
}
