import Foundation
import XCTest
import Workloads
@testable import AutoDiff

/// The passes that shorten the staged P4 derivatives (sums of embedded parts, row operands in fused
/// trees, commuted common subexpressions, repeated reads inside a tree) keep every output equal to the
/// unoptimized program's to rounding, and fire where they should.
final class P4StagedTests: XCTestCase {
    func names(_ program: Program) -> [String] {
        program.instructions.compactMap { instruction in
            if case let .apply(op, _) = instruction.operation { return op.name }
            return nil
        }
    }

    func assertSameOutputs(
        _ a: Program, _ b: Program, at xs: [Tensor], tolerance: Double = 1e-13, file: StaticString = #filePath, line: UInt = #line
    ) {
        for (u, v) in zip(a.outputs(at: xs), b.outputs(at: xs)) {
            XCTAssertEqual(u.shape, v.shape, file: file, line: line)
            let error = zip(u.scalars, v.scalars).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(error, tolerance, "optimized vs unoptimized", file: file, line: line)
        }
    }

    /// The P4 gradient, HVPs and JVP: optimized equals unoptimized to 1e-13, and the optimized MLP
    /// gradient has one `embeddedSum` and no `embed` or `broadcast` left.
    func testP4ProgramsKeepTheirOutputs() {
        let mlp = MLPWorkload(), rosenbrock = RosenbrockWorkload(n: 1000)
        for (x, v, program) in [
            (mlp.theta, mlp.direction, stage(shape: mlp.theta.shape, mlp.loss)),
            (rosenbrock.x, rosenbrock.direction, stage(shape: rosenbrock.x.shape, rosenbrock.value)),
        ] {
            let gradient = program.gradient()
            assertSameOutputs(gradient, gradient.optimized(), at: [x])
            for mode in [HVPMode.reverseOverReverse, .forwardOverReverse] {
                let hvp = program.hvp(mode: mode)
                assertSameOutputs(hvp, hvp.optimized(), at: [x, v])
            }
            assertSameOutputs(program.jvp(), program.jvp().optimized(), at: [x, v])
        }
        let optimized = names(stage(shape: mlp.theta.shape, mlp.loss).gradient().optimized())
        XCTAssertEqual(optimized.filter { $0.hasPrefix("embeddedSum") }.count, 1, "\(optimized)")
        XCTAssertFalse(optimized.contains("embed") || optimized.contains("broadcast") || optimized.contains("tanh"), "\(optimized)")
    }

    /// Overlapping, disjoint and nested parts of a flat argument: the gradient's adds of embeds become one
    /// `embeddedSum`, with the unoptimized outputs.
    func testEmbeddedSumOfOverlappingParts() {
        let x = OpGradcheckTests.input([9])
        let program = stage(shape: [9]) { x in
            (exp(x[0..<4]).sum() + sin(x[2..<7]).sum()) * (x[5..<9] * x[5..<9]).sum() + (x[1..<3] * 3).sum()
        }
        let gradient = program.gradient()
        let summed = gradient.summingEmbeds().eliminatingDeadCode()
        XCTAssertEqual(names(summed).filter { $0 == "embed" }, [], "\(names(summed))")
        XCTAssertEqual(names(summed).filter { $0.hasPrefix("embeddedSum") }.count, 1, "\(names(summed))")
        assertSameOutputs(gradient, summed, at: [x])
        assertSameOutputs(gradient, gradient.optimized(), at: [x])
    }

    /// An embed along an inner axis is not a contiguous run: it stays an `embed`.
    func testEmbedAlongAnInnerAxisIsKept() {
        let x = OpGradcheckTests.input([3, 4])
        let program = stage(shape: [3, 4]) { x in
            exp(x.slice(alongAxis: 1, 0..<2)).sum() + sin(x.slice(alongAxis: 1, 1..<4)).sum()
        }
        let gradient = program.gradient()
        let summed = gradient.summingEmbeds()
        XCTAssertEqual(names(summed).filter { $0 == "embed" }.count, 2, "\(names(summed))")
        XCTAssertFalse(names(summed).contains { $0.hasPrefix("embeddedSum") })
        assertSameOutputs(gradient, gradient.optimized(), at: [x])
    }

    /// `EmbeddedSum`'s JVP and VJP against central differences, at first and second order.
    func testEmbeddedSumDerivatives() {
        let op = EmbeddedSum(shape: [2, 3], offsets: [1, 0, 4], counts: [3, 2, 2])
        func f(_ z: Tensor) -> Tensor {
            sin(op.apply([z[0..<3].reshaped(to: [3, 1]), z[3..<5], z[5..<7] * z[5..<7]]) * z[0..<6].reshaped(to: [2, 3]))
        }
        let z = OpGradcheckTests.input([7])
        XCTAssertLessThan(gradcheck(at: z, of: f).maxRelativeError, 1e-6)
        XCTAssertLessThan(gradcheck(at: z) { z in gradient(at: z) { f($0).sum() } }.maxRelativeError, 1e-6)
        // The value: zeros where no part lies, parts added where they overlap.
        let value = op.value([Tensor([1, 2, 3]).reshaped(to: [3, 1]), Tensor([10, 20]), Tensor([100, 200])])
        XCTAssertEqual(value.scalars, [10, 21, 2, 3, 100, 200])
    }

    /// A row operand (a bias broadcast along the batch) fuses into the tree, tiled block by block across
    /// rows that straddle blocks, in the plain and summed forms, and an explicit `broadcast` is read as
    /// its row.
    func testRowOperandsFuse() {
        let x = OpGradcheckTests.input([37, 29]), b = OpGradcheckTests.input([29], offset: 1)
        let program = stage(shapes: [[37, 29], [29]]) { xs in
            let z = tanh(xs[0] + xs[1]) * (xs[1].broadcast(to: [37, 29]) - 2)
            return z.sum() + (z * xs[0]).sum()
        }
        let fused = program.optimized()
        XCTAssertFalse(names(fused).contains("broadcast") || names(fused).contains("tanh"), "\(names(fused))")
        assertSameOutputs(program, fused, at: [x, b])
        let gradient = program.gradient()
        assertSameOutputs(gradient, gradient.optimized(), at: [x, b])
        XCTAssertTrue(FusedElementwise.tiles([1, 29], [37, 29]))
        XCTAssertFalse(FusedElementwise.tiles([37, 1], [37, 29]))
    }

    /// `a·b` and `b·a` are one value; `x + x` inside a tree computes x once.
    func testCommutedProductsAreShared() {
        let x = OpGradcheckTests.input([2, 3])
        let program = stage(shapes: [[2, 3], [2, 3]]) { xs in exp(xs[0] * xs[1]) + exp(xs[1] * xs[0]) }
        let shared = program.eliminatingCommonSubexpressions().eliminatingDeadCode()
        XCTAssertEqual(names(shared), ["multiply", "exp", "add"])
        assertSameOutputs(program, shared, at: [x, x * 2])
        XCTAssertEqual(names(program.optimized()), ["fused(multiply,exp,add)"])
    }
}
