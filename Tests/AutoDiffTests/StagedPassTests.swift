import Foundation
import XCTest
@testable import AutoDiff

/// Each optimization pass removes what it should and keeps the outputs (to rounding).
final class StagedPassTests: XCTestCase {
    let x = OpGradcheckTests.input([2, 3])

    func names(_ program: Program) -> [String] {
        program.instructions.compactMap { instruction in
            if case let .apply(op, _) = instruction.operation { return op.name }
            return nil
        }
    }

    func assertSameOutputs(_ a: Program, _ b: Program, at xs: [Tensor], file: StaticString = #filePath, line: UInt = #line) {
        for (u, v) in zip(a.outputs(at: xs), b.outputs(at: xs)) {
            XCTAssertTrue(u.isApproximatelyEqual(to: v, tolerance: 1e-14), "\(u) vs \(v)", file: file, line: line)
        }
    }

    func testDeadCodeIsRemoved() {
        let program = stage(shape: [2, 3]) { x in
            _ = exp(x)
            return sin(x)
        }
        XCTAssertEqual(names(program), ["exp", "sin"])
        let pruned = program.eliminatingDeadCode()
        XCTAssertEqual(names(pruned), ["sin"])
        assertSameOutputs(program, pruned, at: [x])
    }

    func testCommonSubexpressionsAreShared() {
        let program = stage(shape: [2, 3]) { x in sin(x * 2) + sin(x * 2) }
        XCTAssertEqual(names(program), ["multiply", "sin", "multiply", "sin", "add"])
        let shared = program.eliminatingCommonSubexpressions().eliminatingDeadCode()
        XCTAssertEqual(names(shared), ["multiply", "sin", "add"])
        assertSameOutputs(program, shared, at: [x])
    }

    func testConstantApplicationsAreFolded() {
        typealias I = Program.Instruction
        let program = Program(
            instructions: [
                I(operation: .input(0), shape: [3]),
                I(operation: .constant(Tensor([1, 2, 3])), shape: [3]),
                I(operation: .apply(Exp(), arguments: [1]), shape: [3]),
                I(operation: .apply(Multiply(), arguments: [0, 2]), shape: [3]),
            ],
            outputs: [3], inputShapes: [[3]])
        let folded = program.foldingConstants().eliminatingDeadCode()
        XCTAssertEqual(names(folded), ["multiply"])
        assertSameOutputs(program, folded, at: [Tensor([0.5, -1, 2])])
    }

    func testIdentitiesFromDerivativesAreRemoved() {
        let program = stage(shape: [2, 3]) { x in -(-(x.transposed.transposed * 1.0 + 0.0)) / 1.0 - 0.0 }
        let simplified = program.optimized()
        XCTAssertEqual(names(simplified), [])
        assertSameOutputs(program, simplified, at: [x])
        let zeroMinus = stage(shape: [2, 3]) { x in 0.0 - x }.optimized()
        XCTAssertEqual(names(zeroMinus), ["negate"])
    }

    func testSumOfBroadcastBecomesAScaling() {
        let program = stage(shape: [3]) { x in x.broadcast(to: [4, 3]).sum(toShape: [3]) }
        let simplified = program.optimized()
        XCTAssertEqual(names(simplified), ["multiply"])
        assertSameOutputs(program, simplified, at: [Tensor([1, -2, 0.5])])
    }

    func testMatmulAbsorbsTransposes() {
        let a = OpGradcheckTests.input([3, 2]), b = OpGradcheckTests.input([4, 3], offset: 1)
        let program = stage(shapes: [[3, 2], [4, 3]]) { xs in matmul(xs[0].transposed, xs[1].transposed) }
        let folded = program.optimized()
        XCTAssertEqual(names(folded), ["matmul"])
        guard case let .apply(op, _) = folded.instructions.last!.operation, let matmul = op as? Matmul else {
            return XCTFail("expected a matmul")
        }
        XCTAssertTrue(matmul.transposeA && matmul.transposeB)
        assertSameOutputs(program, folded, at: [a, b])
    }

    /// Derivative programs shrink: the MLP-style gradient loses its ×1 seeds, duplicate rules and
    /// transposes.
    func testGradientProgramsShrink() {
        let w = OpGradcheckTests.input([3, 4])
        let gradientProgram = stage(shapes: [[2, 3], [3, 4]]) { xs in tanh(matmul(xs[0], xs[1])).sum() }.gradient()
        let optimized = gradientProgram.optimized()
        XCTAssertLessThan(optimized.applicationCount, gradientProgram.applicationCount)
        XCTAssertFalse(names(optimized).contains("transpose"))
        assertSameOutputs(gradientProgram, optimized, at: [x, w])
    }

    /// A chain of element-wise ops of one shape becomes one fused application with the same bits; a
    /// value read by two ops of the tree is computed once in it, a row operand is read in the tree; the
    /// fused op is differentiable.
    func testElementwiseChainsFuse() {
        let x = OpGradcheckTests.input([3, 700]), row = OpGradcheckTests.input([700], offset: 1)
        let program = stage(shapes: [[3, 700], [700]]) { xs in
            let shared = sin(xs[0])
            return (tanh(shared * 2 + 1) * exp(-xs[0]) / shared + xs[1]).sum()
        }
        let fused = program.fusingElementwise()
        XCTAssertEqual(names(fused).count, 1, "\(names(fused))")  // one tree: the shared sin, the row and the sum
        XCTAssertTrue(names(fused)[0].hasPrefix("fused(sin,"), "\(names(fused))")
        // The fused sum adds block totals, a different order from the one-pass sum: equal to rounding
        // (bit-equal with the AVX2 kernels here, 2 ulp apart with the portable ones).
        let unfusedValue = program.outputs(at: [x, row])[0], fusedValue = fused.outputs(at: [x, row])[0]
        XCTAssertTrue(fusedValue.isApproximatelyEqual(to: unfusedValue, tolerance: 1e-13), "\(fusedValue) \(unfusedValue)")
        // Without the sum, the fused tree's elements are the unfused ops' bits.
        let elementwise = stage(shapes: [[3, 700], [700]]) { xs in
            let shared = sin(xs[0])
            return tanh(shared * 2 + 1) * exp(-xs[0]) / shared + xs[1]
        }
        XCTAssertEqual(elementwise.outputs(at: [x, row])[0].scalars, elementwise.fusingElementwise().outputs(at: [x, row])[0].scalars)
        let direction = OpGradcheckTests.input([3, 700], offset: 2)
        let eager = gradient(at: x) { program.outputs(at: [$0, row])[0] }
        XCTAssertTrue(gradient(at: x) { fused.outputs(at: [$0, row])[0] }.isApproximatelyEqual(to: eager, tolerance: 1e-13))
        let stagedGradient = fused.gradient().outputs(at: [x, row])[0]
        XCTAssertTrue(stagedGradient.isApproximatelyEqual(to: eager, tolerance: 1e-13), "gradient program of a fused program")
        let hvpEager = hvp(at: x, direction: direction) { program.outputs(at: [$0, row])[0] }
        XCTAssertTrue(hvp(at: x, direction: direction) { fused.outputs(at: [$0, row])[0] }.isApproximatelyEqual(to: hvpEager, tolerance: 1e-12))
    }

    /// A total sum of a tree is accumulated block by block (no full-size output), equal to rounding.
    func testSumOfAnElementwiseTreeFuses() {
        let x = OpGradcheckTests.input([3, 700])
        let program = stage(shape: [3, 700]) { x in (x * x + sin(x)).sum() }
        let fused = program.optimized()
        XCTAssertEqual(names(fused), ["fused(multiply,sin,add).sum"])
        XCTAssertEqual(fused.outputShapes, [[]])
        let value = fused.outputs(at: [x])[0].scalar, reference = program.outputs(at: [x])[0].scalar
        XCTAssertEqual(value, reference, accuracy: 1e-13 * Swift.abs(reference))
        XCTAssertTrue(fused.gradient().outputs(at: [x])[0].isApproximatelyEqual(to: 2 * x + cos(x), tolerance: 1e-14))
        XCTAssertTrue(fused.swiftSource(functionName: "f").contains(".sum(toShape: [])"))
    }

    /// The fused primitive's rules (nested differentiation of the unfused tree) pass gradcheck at first
    /// and second order, with and without the fused sum.
    func testFusedPrimitivePassesGradcheck() {
        let x = OpGradcheckTests.input([2, 3])
        for summed in [false, true] {
            let program = stage(shape: [2, 3]) { x in
                let tree = tanh(x * 2 + 1) * exp(-x)
                return summed ? tree.sum() : tree
            }.optimized()
            XCTAssertTrue(names(program).allSatisfy { $0.hasPrefix("fused(") }, "\(names(program))")
            let f: (Tensor) -> Tensor = { program.outputs(at: [$0])[0] }
            let first = gradcheck(at: x, of: f)
            XCTAssertTrue(first.passes(), "\(first)")
            let weights = OpGradcheckTests.weights(like: f(x))
            let second = gradcheck(at: x) { x in gradient(at: x) { y in (f(y) * weights).sum() } }
            XCTAssertTrue(second.passes(), "\(second)")
        }
    }
}
