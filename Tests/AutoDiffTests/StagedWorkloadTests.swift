import Foundation
import XCTest
@testable import AutoDiff
import Workloads

/// Workloads P1–P5 staged: value, gradient, JVP and both HVPs of each staged program equal the eager
/// engine to 1e-13 relative, with the optimization passes off and on.
final class StagedWorkloadTests: XCTestCase {
    /// The program as staged and after `optimized()`: every check runs on both.
    static func variants(_ program: Program) -> [(String, Program)] {
        [("unoptimized", program), ("optimized", program.optimized())]
    }

    func assertClose(_ a: Tensor, _ b: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, message, file: file, line: line)
        XCTAssertTrue(a.isApproximatelyEqual(to: b, tolerance: 1e-13), "\(message): \(a) vs \(b)", file: file, line: line)
    }

    /// Value, gradient, JVP and HVPs of a scalar `f` of several arguments, staged vs eager.
    func check(_ name: String, at xs: [Tensor], directions vs: [Tensor], _ f: @escaping ([Tensor]) -> Tensor) {
        let staged = stage(shapes: xs.map(\.shape), f)
        let gradients = valueWithGradient(at: xs, of: f).gradients
        let tangent = valueWithDifferential(at: xs, directions: vs, of: f).differential
        for (variant, program) in Self.variants(staged) {
            let label = "\(name) (\(variant))"
            assertClose(program.outputs(at: xs)[0], f(xs), "\(label) value")
            for (k, g) in Self.variants(program.gradient()).flatMap({ $0.1.outputs(at: xs) }).enumerated() {
                assertClose(g, gradients[k % xs.count], "\(label) gradient \(k % xs.count)")
            }
            for (_, jvpProgram) in Self.variants(program.jvp()) {
                assertClose(jvpProgram.outputs(at: xs + vs)[0], tangent, "\(label) jvp")
            }
            for mode in [HVPMode.reverseOverReverse, .forwardOverReverse] {
                let eager = hvp(at: xs, directions: vs, mode: mode, of: f)
                for (_, hvpProgram) in Self.variants(program.hvp(mode: mode)) {
                    for (k, block) in hvpProgram.outputs(at: xs + vs).enumerated() {
                        assertClose(block, eager[k], "\(label) hvp \(mode) block \(k)")
                    }
                }
            }
        }
    }

    func testP1RidgeLowerAndUpper() {
        let p = RidgeWorkload(n: 40, d: 6)
        let w = Tensor((0..<6).map { 0.3 * sin(Double($0)) })
        let v = (Tensor((0..<6).map { cos(Double($0)) }), Tensor((0..<6).map { sin(0.7 * Double($0)) }))
        check("P1 lower", at: [p.x0, w], directions: [v.0, v.1]) { p.lower($0[0], $0[1]) }
        check("P1 upper", at: [p.x0, w], directions: [v.0, v.1]) { p.upper($0[0], $0[1]) }
        let mixed = stage(shapes: [[6], [6]]) { p.lower($0[0], $0[1]) }.mixedHVP()
        for (variant, program) in Self.variants(mixed) {
            assertClose(
                program.outputs(at: [p.x0, w, v.1])[0], mixedHVP(at: p.x0, w, direction: v.1, of: p.lower),
                "P1 mixed product (\(variant))")
        }
    }

    /// P2: T = 4 unrolled gradient steps from w₀ = 0, then F(w_T): the staged hypergradient.
    func testP2UnrolledHypergradient() {
        let p = RidgeWorkload(n: 40, d: 6)
        let unrolled: ([Tensor]) -> Tensor = { xs in
            var w = Tensor(zeros: [6])
            for _ in 0..<4 { w = w - p.eta * gradient(at: w) { w in p.lower(xs[0], w) } }
            return p.upper(xs[0], w)
        }
        check("P2 unrolled", at: [p.x0], directions: [Tensor((0..<6).map { cos(Double($0)) })], unrolled)
        let exact = p.unrolledHypergradient(p.x0, steps: 4)
        XCTAssertTrue(stage(shapes: [[6]], unrolled).gradient().outputs(at: [p.x0])[0].isApproximatelyEqual(to: exact, tolerance: 1e-10))
    }

    func testP3HyperCleaningLower() {
        let p = HyperCleaningWorkload(n: 30, m: 10, d: 8)
        let w = Tensor((0..<8).map { 0.2 * cos(Double($0)) })
        let v = (Tensor((0..<30).map { sin(Double($0)) }), Tensor((0..<8).map { cos(0.3 * Double($0)) }))
        check("P3 lower", at: [p.x0, w], directions: [v.0, v.1]) { p.lower($0[0], $0[1]) }
    }

    func testP4MLPAndRosenbrock() {
        let mlp = MLPWorkload()
        check("P4 mlp", at: [mlp.theta], directions: [mlp.direction]) { mlp.loss($0[0]) }
        let rosenbrock = RosenbrockWorkload(n: 50)
        check("P4 rosenbrock", at: [rosenbrock.x], directions: [rosenbrock.direction]) { rosenbrock.value($0[0]) }
    }

    /// P5: the sign-SGD step Ψ(x, w) = w − 0.01 sign(∇_w f(x, w)), through a weighted sum.
    func testP5SignStep() {
        let p = RidgeWorkload(n: 40, d: 6)
        let w = Tensor((0..<6).map { 0.3 * sin(Double($0)) }), weights = Tensor((0..<6).map { 1 + Double($0) })
        let v = (Tensor((0..<6).map { cos(Double($0)) }), Tensor((0..<6).map { sin(0.7 * Double($0)) }))
        check("P5 step", at: [p.x0, w], directions: [v.0, v.1]) { xs in
            let step = xs[1] - 0.01 * sign(gradient(at: xs[1]) { w in p.lower(xs[0], w) })
            return (weights * step).sum() + 0.01 * xs[0].squaredNorm()
        }
    }

    /// P2 reverse-mode unrolling with T = 60 as a loop over two staged programs (the step Ψ and its
    /// VJP), against the reference loop of the workload; neither program grows with T.
    func testP2ReverseUnrollingOverAStagedStep() {
        let p = RidgeWorkload(n: 40, d: 6), steps = 60
        let step = stage(shapes: [[6], [6]]) { s in s[0] - p.eta * gradient(at: s[0]) { w in p.lower(s[1], w) } }.optimized()
        let stepVJP = step.vjp().optimized()
        let states = step.scan(from: Tensor(zeros: [6]), parameters: [p.x0], steps: steps)
        var adjoint = gradient(at: states[steps]) { w in p.upper(p.x0, w) }, hypergradient = Tensor(zeros: [6])
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let adjoints = stepVJP.outputs(at: [states[t], p.x0, adjoint])
            adjoint = adjoints[0]
            hypergradient = hypergradient + adjoints[1]
        }
        let exact = p.unrolledHypergradient(p.x0, steps: steps)
        XCTAssertTrue(hypergradient.isApproximatelyEqual(to: exact, tolerance: 1e-11), "\(hypergradient) vs \(exact)")
        XCTAssertLessThan(stepVJP.applicationCount, 40)
    }
}
