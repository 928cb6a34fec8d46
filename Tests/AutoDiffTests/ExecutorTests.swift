import Dispatch
import Foundation
import Synchronization
import XCTest
@testable import AutoDiff
import Workloads

/// The compiled executor (memory plan, buffer-level ops, arenas) against the interpreter, on every
/// staged program the suite builds, with the passes off and on; several threads on one program; and
/// programs run inside transforms (interpreted, so they still compose with the engine).
final class ExecutorTests: XCTestCase {
    /// A scalar function of several arguments with its point and tangent directions.
    struct Case {
        let name: String
        let at: [Tensor]
        let directions: [Tensor]
        let function: ([Tensor]) -> Tensor
    }

    /// The staged functions of the workload and pass tests.
    static func cases() -> [Case] {
        let ridge = RidgeWorkload(n: 40, d: 6), cleaning = HyperCleaningWorkload(n: 30, m: 10, d: 8), mlp = MLPWorkload()
        let w6 = Tensor((0..<6).map { 0.3 * sin(Double($0)) }), v6 = Tensor((0..<6).map { cos(Double($0)) })
        let w8 = Tensor((0..<8).map { 0.2 * cos(Double($0)) })
        let x = OpGradcheckTests.input([3, 700]), row = OpGradcheckTests.input([700], offset: 1)
        var cases = [
            Case(name: "P1 lower", at: [ridge.x0, w6], directions: [v6, v6]) { ridge.lower($0[0], $0[1]) },
            Case(name: "P1 upper", at: [ridge.x0, w6], directions: [v6, v6]) { ridge.upper($0[0], $0[1]) },
            Case(name: "P2 step", at: [w6, ridge.x0], directions: [v6, v6]) { s in
                (s[0] - ridge.eta * gradient(at: s[0]) { w in ridge.lower(s[1], w) }).squaredNorm()
            },
            Case(name: "P3 lower", at: [cleaning.x0, w8], directions: [OpGradcheckTests.input([30]), OpGradcheckTests.input([8])]) {
                cleaning.lower($0[0], $0[1])
            },
            Case(name: "P4 mlp", at: [mlp.theta], directions: [mlp.direction]) { mlp.loss($0[0]) },
            Case(name: "fusion chain", at: [x, row], directions: [OpGradcheckTests.input([3, 700], offset: 2), row]) { xs in
                let shared = sin(xs[0])
                return (tanh(shared * 2 + 1) * exp(-xs[0]) / shared + xs[1]).sum()
            },
            Case(name: "layouts", at: [OpGradcheckTests.input([4, 5]), OpGradcheckTests.input([5, 3])],
                 directions: [OpGradcheckTests.input([4, 5], offset: 3), OpGradcheckTests.input([5, 3], offset: 4)]) { xs in
                let product = matmul(xs[0].transposed.transposed, xs[1]) + xs[1].sum(alongAxis: 0)
                let joined = concatenate([product, xs[0].transposed.slice(alongAxis: 1, 0..<3)], alongAxis: 0)
                let columns = (xs[0] * xs[0]).mean(alongAxis: 1).expandingShape(at: 1)  // [4, 1]: column sums, column broadcasts
                return (joined.logSumExp(alongAxis: 1) * pow(joined.mean(alongAxis: 0).sum() + 3, 1.5)).sum()
                    + (columns * xs[0]).sum()
            },
        ]
        for n in [50, 100_000] {
            let rosenbrock = RosenbrockWorkload(n: n)
            cases.append(Case(name: "P4 rosenbrock n\(n)", at: [rosenbrock.x], directions: [rosenbrock.direction]) {
                rosenbrock.value($0[0])
            })
        }
        return cases
    }

    /// Every program derived from `item`: the function, its gradient, JVP and both HVPs, each as staged
    /// and optimized, with the arguments they take.
    static func programs(_ item: Case) -> [(String, Program, [Tensor])] {
        let staged = stage(shapes: item.at.map(\.shape), item.function)
        var programs = [("value", staged, item.at), ("gradient", staged.gradient(), item.at),
                        ("jvp", staged.jvp(), item.at + item.directions)]
        for mode in [HVPMode.reverseOverReverse, .forwardOverReverse] {
            programs.append(("hvp \(mode)", staged.hvp(mode: mode), item.at + item.directions))
        }
        return programs.flatMap { name, program, arguments in
            [("\(item.name) \(name)", program, arguments), ("\(item.name) \(name) optimized", program.optimized(), arguments)]
        }
    }

    func testExecutorEqualsInterpreterBitForBit() {
        for item in Self.cases() {
            for (name, program, arguments) in Self.programs(item) {
                let executed = program.outputs(at: arguments), interpreted = program.interpretedOutputs(at: arguments)
                for (k, (a, b)) in zip(executed, interpreted).enumerated() {
                    XCTAssertEqual(a.shape, b.shape, "\(name) output \(k)")
                    XCTAssertEqual(a.scalars, b.scalars, "\(name) output \(k)")
                }
                // A second call reuses the arena and gives the same bits.
                XCTAssertEqual(program.outputs(at: arguments).map(\.scalars), executed.map(\.scalars), "\(name) second call")
            }
        }
    }

    /// The P2 step Ψ and its VJP (the programs the staged RAD row replays), optimized.
    func testP2StepAndVJPEqualTheInterpreter() {
        let p = RidgeWorkload(n: 40, d: 6)
        let step = stage(shapes: [[6], [6]]) { s in s[0] - p.eta * gradient(at: s[0]) { w in p.lower(s[1], w) } }
        let w = Tensor((0..<6).map { 0.1 * Double($0) }), adjoint = Tensor((0..<6).map { cos(Double($0)) })
        for program in [step, step.optimized()] {
            XCTAssertEqual(program.outputs(at: [w, p.x0])[0].scalars, program.interpretedOutputs(at: [w, p.x0])[0].scalars)
            for vjpProgram in [program.vjp(), program.vjp().optimized()] {
                let arguments = [w, p.x0, adjoint]
                XCTAssertEqual(vjpProgram.outputs(at: arguments).map(\.scalars), vjpProgram.interpretedOutputs(at: arguments).map(\.scalars))
            }
        }
    }

    /// `outputs(at:into:)` reuses the results' storage, replaces results of the wrong shape, and equals `outputs(at:)`.
    func testOutputsIntoCallerBuffers() {
        let w = RosenbrockWorkload(n: 300)
        let program = stage(shape: [300], w.value).hvp(mode: .forwardOverReverse).optimized()
        var results = [Tensor]()
        program.outputs(at: [w.x, w.direction], into: &results)
        XCTAssertEqual(results.map(\.scalars), program.outputs(at: [w.x, w.direction]).map(\.scalars))
        let address = results[0].scalars.withUnsafeBufferPointer { $0.baseAddress }
        program.outputs(at: [w.direction, w.x], into: &results)
        XCTAssertEqual(results[0].scalars.withUnsafeBufferPointer { $0.baseAddress }, address, "storage reused")
        XCTAssertEqual(results[0].scalars, program.interpretedOutputs(at: [w.direction, w.x])[0].scalars)
        var wrong = [Tensor(zeros: [2])]
        program.outputs(at: [w.x, w.direction], into: &wrong)
        XCTAssertEqual(wrong.map(\.shape), [[300]])
    }

    /// Eight threads run one program at once (each call takes its own arena) and get the single-thread bits.
    func testConcurrentCallsOfOneProgram() {
        let mlp = MLPWorkload(), rosenbrock = RosenbrockWorkload(n: 100_000)
        let jobs: [(Program, [Tensor])] = [
            (stage(shape: mlp.theta.shape, mlp.loss).hvp(mode: .reverseOverReverse).optimized(), [mlp.theta, mlp.direction]),
            (stage(shape: [100_000], rosenbrock.value).gradient().optimized(), [rosenbrock.x]),
        ]
        for (program, arguments) in jobs {
            let expected = program.interpretedOutputs(at: arguments)[0].scalars
            let mismatches = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 8) { thread in
                var results = [Tensor]()
                for call in 0..<5 {
                    let scalars: [Double]
                    if (thread + call) % 2 == 0 {
                        program.outputs(at: arguments, into: &results)
                        scalars = results[0].scalars
                    } else {
                        scalars = program.outputs(at: arguments)[0].scalars
                    }
                    if scalars != expected { mismatches.withLock { $0 += 1 } }
                }
            }
            XCTAssertEqual(mismatches.withLock { $0 }, 0)
        }
    }

    /// Inside `gradient` and `stage` a program is interpreted through the engine: it is differentiated,
    /// or recorded into the enclosing program, like any function.
    func testProgramsComposeWithTransforms() {
        let w = RosenbrockWorkload(n: 40)
        let program = stage(shape: [40], w.value).optimized()
        let gradientProgram = program.gradient().optimized()
        XCTAssertTrue(gradient(at: w.x) { program($0) }.isApproximatelyEqual(to: gradientProgram(w.x), tolerance: 1e-13))
        let nested = stage(shape: [40]) { x in gradientProgram(x).squaredNorm() }
        XCTAssertEqual(nested(w.x).scalar, gradientProgram(w.x).squaredNorm().scalar, accuracy: 1e-9)
    }

    /// A user primitive that only gives `value(_:)` runs in a compiled program through the fallback.
    func testUserPrimitiveRunsThroughTheValueFallback() {
        struct Cube: UnaryPrimitive {
            var name: String { "cube" }
            func value(_ x: Tensor) -> Tensor { Tensor(shape: x.shape, scalars: x.scalars.map { $0 * $0 * $0 }) }
            func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { 3 * x * x * t }
            func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { 3 * x * x * g }
            func swiftSource(_ x: String) -> String { "cube(\(x))" }
        }
        let x = Tensor([1, -2, 0.5])
        let program = stage(shape: [3]) { x in (Cube()(x + 1) * 2).sum() }.gradient().optimized()
        XCTAssertEqual(program(x).scalars, [24, 6, 13.5])
    }
}
