import Bilevel
import Foundation

// release-checks: one bad call per run, named by the first argument, so `.ci/run` can build this product
// with `-c release` and check that every class of bad input prints its full message (shapes, values)
// in an optimized build. Engine misuse stops the process through `engineFailure` (exit by signal);
// bilevel errors are thrown, printed to standard error here, and exit with status 1.

/// A quadratic bilevel problem on y ∈ ℝ³ with lower curvature `curvature`:
/// `f(x, y) = ½ c ‖y − x‖²`, `F(x, y) = ½ ‖y‖² + upperExtra(y)`.
func quadratic(
    curvature: Double = 1, dynamics: InnerDynamics = .gradientDescent(step: 0.1), innerSteps: Int = 20,
    constraints: LinearConstraints? = nil, upperExtra: @escaping (Tensor) -> Tensor = { _ in Tensor(0) }
) -> BilevelProblem {
    BilevelProblem(
        upper: { _, y in 0.5 * y.squaredNorm() + upperExtra(y) },
        lower: { x, y in (0.5 * curvature) * (y - x).squaredNorm() },
        dynamics: dynamics, innerSteps: innerSteps, constraints: constraints, lowerShape: [3])
}

let x = Tensor([1, 2, 3]), y0 = Tensor(zeros: [3])

/// Runs a bilevel call that must throw; prints its error to standard error and exits with status 1.
func expectThrow(_ body: () throws -> HypergradientResult) -> Never {
    do {
        let result = try body()
        print("release-checks: no error; hypergradient \(result.hypergradient)")
        exit(0)
    } catch {
        FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
        exit(1)
    }
}

let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first else {
    FileHandle.standardError.write("usage: release-checks <case>\n".data(using: .utf8)!)
    exit(2)
}

switch name {
// Engine: each call stops the process with the AutoDiffError description.
case "matmul": print(matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [4, 5])))
case "add": print(Tensor(zeros: [2, 3]) + Tensor(zeros: [4]))
case "reshape": print(Tensor(zeros: [2, 3]).reshaped(to: [4, 2]))
case "slice": print(Tensor(zeros: [2, 3]).slice(alongAxis: 1, 0..<5))
case "concatenate": print(concatenate([Tensor(zeros: [2, 3]), Tensor(zeros: [2, 4])], alongAxis: 0))
case "gradient": print(gradient(at: Tensor(zeros: [3])) { 2 * $0 })
case "hvp": print(hvp(at: Tensor(zeros: [3]), direction: Tensor(zeros: [2])) { $0.squaredNorm() })
case "jvp": print(jvp(at: Tensor(zeros: [3]), direction: Tensor(zeros: [2])) { 2 * $0 }.tangent)
case "pullback": print(vjp(at: Tensor(zeros: [3])) { 2 * $0 }.pullback(Tensor(zeros: [2])))
case "mean": print(Tensor(zeros: [0]).mean())
case "solve": print(solve(Tensor(zeros: [2, 2]), Tensor(ones: [2])))
case "extent": print(Tensor(zeros: [2, -1]))
// Bilevel: each call throws a BilevelError naming the quantity and the values.
case "bilevel-shape":
    expectThrow { try ReverseUnroll().hypergradient(of: quadratic(), at: x, from: Tensor([0])) }
case "bilevel-nonfinite":
    expectThrow {
        try Implicit(solver: .conjugateGradient()).hypergradient(of: quadratic(upperExtra: { Double.nan * $0.sum() }), at: x, from: y0)
    }
case "bilevel-divergence":
    expectThrow {
        try Implicit(solver: .neumannSeries(terms: 400, step: 3)).hypergradient(of: quadratic(curvature: 4), at: x, from: y0)
    }
case "bilevel-solver-cap":
    expectThrow {
        try Implicit(solver: .conjugateGradient(maxIterations: 1, strict: true)).hypergradient(
            of: BilevelProblem(
                upper: { _, y in y.squaredNorm() }, lower: { x, y in 0.5 * dot(y, matmul(Tensor(shape: [3, 3], scalars: [4, 1, 0, 1, 3, 1, 0, 1, 2]), y)) - dot(x, y) },
                innerSteps: 20),
            at: x, from: y0)
    }
case "bilevel-parameters":
    expectThrow { try ForwardUnroll().hypergradient(of: quadratic(dynamics: .momentum(step: 0.1, beta: 1.5)), at: x, from: y0) }
case "bilevel-constraints":
    expectThrow {
        try ReverseUnroll().hypergradient(of: quadratic(constraints: .box(lower: 0, upper: 1, count: 3)), at: x, from: y0)
    }
default:
    FileHandle.standardError.write("release-checks: unknown case '\(name)'\n".data(using: .utf8)!)
    exit(2)
}
print("release-checks: the bad call '\(name)' did not stop the program")
exit(0)
