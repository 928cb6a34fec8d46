import Foundation
import XCTest
@testable import AutoDiff

/// Staging records a program; the program and its derivative programs (gradient, VJP, JVP, HVP in both
/// modes) equal the eager engine to 1e-13 relative on every op of `OpGradcheckTests`.
final class StagedProgramTests: XCTestCase {
    static let tolerance = 1e-13

    func assertClose(_ a: Tensor, _ b: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, message, file: file, line: line)
        XCTAssertTrue(a.isApproximatelyEqual(to: b, tolerance: Self.tolerance), "\(message): \(a) vs \(b)", file: file, line: line)
    }

    func testStagingRecordsOneInstructionPerOpWithStaticShapes() {
        var sawSymbolic = false
        let program = stage(shapes: [[2, 3], [3]]) { xs in
            sawSymbolic = xs[0].isSymbolic
            return (tanh(xs[0] * xs[1]) + 1.5).sum()
        }
        XCTAssertTrue(sawSymbolic)
        XCTAssertFalse(Tensor(1).isSymbolic)
        // inputs 2, multiply, tanh, constant 1.5, add, sumToShape
        XCTAssertEqual(program.instructions.count, 7)
        XCTAssertEqual(program.applicationCount, 4)
        XCTAssertEqual(program.instructions.map(\.shape), [[2, 3], [3], [2, 3], [2, 3], [], [2, 3], []])
        XCTAssertEqual(program.outputShapes, [[]])
        XCTAssertTrue(program.description.contains("%3: [2, 3] = tanh(%2)"), program.description)
        let x = OpGradcheckTests.input([2, 3]), y = OpGradcheckTests.input([3], offset: 1)
        assertClose(program(x, y), (tanh(x * y) + 1.5).sum(), "value")
    }

    /// Every op case except `choleskySolve` (which decides positive definiteness on values, so it is not
    /// stageable on a symbolic matrix): value, gradient of ⟨w, f⟩, JVP, both HVPs, and the HVP obtained
    /// by differentiating the staged gradient program again.
    func testEveryOpStagedEqualsEager() {
        for c in OpGradcheckTests.unaryCases where c.name != "choleskySolve" {
            let w = OpGradcheckTests.weights(like: c.f(c.x))
            let v = OpGradcheckTests.input(c.x.shape, offset: 5)
            checkAll(c.name, at: [c.x], directions: [v], f: { c.f($0[0]) }, w: w)
        }
        for c in OpGradcheckTests.binaryCases {
            let w = OpGradcheckTests.weights(like: c.f(c.x, c.y))
            let vs = [OpGradcheckTests.input(c.x.shape, offset: 5), OpGradcheckTests.input(c.y.shape, offset: 6)]
            checkAll(c.name, at: [c.x, c.y], directions: vs, f: { c.f($0[0], $0[1]) }, w: w)
        }
    }

    func checkAll(_ name: String, at xs: [Tensor], directions vs: [Tensor], f: @escaping ([Tensor]) -> Tensor, w: Tensor) {
        let shapes = xs.map(\.shape)
        let loss: ([Tensor]) -> Tensor = { (f($0) * w).sum() }
        assertClose(stage(shapes: shapes, f).outputs(at: xs)[0], f(xs), "\(name) value")
        let program = stage(shapes: shapes, loss)
        let gradients = program.gradient().outputs(at: xs), eager = valueWithGradient(at: xs, of: loss).gradients
        for k in xs.indices { assertClose(gradients[k], eager[k], "\(name) gradient \(k)") }
        assertClose(
            stage(shapes: shapes, f).jvp().outputs(at: xs + vs)[0],
            valueWithDifferential(at: xs, directions: vs, of: f).differential, "\(name) jvp")
        for mode in [HVPMode.reverseOverReverse, .forwardOverReverse] {
            let staged = program.hvp(mode: mode).outputs(at: xs + vs)
            let eagerHVP = hvp(at: xs, directions: vs, mode: mode, of: loss)
            for k in xs.indices { assertClose(staged[k], eagerHVP[k], "\(name) hvp \(mode) block \(k)") }
        }
        if xs.count == 1 {
            // jit(grad) then vjp of that program: H v for the symmetric Hessian.
            let twice = program.gradient().vjp().outputs(at: xs + vs)[0]
            assertClose(twice, hvp(at: xs[0], direction: vs[0]) { loss([$0]) }, "\(name) vjp of staged gradient")
        }
    }

    /// A program runs inside eager transforms like any function (its ops record on the active levels).
    func testProgramsAreDifferentiableByEagerTransforms() {
        let x = OpGradcheckTests.input([4])
        let f: (Tensor) -> Tensor = { x in (sin(x) * exp(x)).sum() }
        let program = stage(shape: [4], f)
        assertClose(gradient(at: x) { program($0) }, gradient(at: x, of: f), "gradient through a program")
        let direction = OpGradcheckTests.input([4], offset: 1)
        assertClose(
            hvp(at: x, direction: direction) { program($0) }, hvp(at: x, direction: direction, of: f),
            "hvp through a program")
    }

    /// A staged function reading a value is caught as symbolic before it reads (`isSymbolic`), and the
    /// vjp program takes the cotangent last.
    func testVJPProgramTakesTheCotangentLast() {
        let x = OpGradcheckTests.input([2, 3])
        let program = stage(shape: [2, 3]) { x in x.sum(alongAxis: 1) * 2 }
        let pullback = program.vjp()
        XCTAssertEqual(pullback.inputShapes, [[2, 3], [2]])
        let adjoint = pullback.outputs(at: [x, Tensor([1, -1])])[0]
        XCTAssertEqual(adjoint.scalars, [2, 2, 2, -2, -2, -2])
    }

    /// Constants print as Swift literals that read back to the same Doubles.
    func testLiteralsRoundTrip() {
        let t = Tensor(shape: [2, 2], scalars: [0.1, -1e-300, Double.infinity, 1.0 / 3])
        XCTAssertEqual(Program.literal(t), "Tensor(shape: [2, 2], scalars: [0.1, -1e-300, Double.infinity, 0.3333333333333333])")
    }
}
