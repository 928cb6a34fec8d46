import Foundation
import Workloads
import XCTest
@testable import AutoDiff

/// Sums along leading axes inside element-wise fusion (`Program.fusingElementwise()`): a row sum that is
/// a tree's only reader is accumulated block by block, and a tree read elsewhere too is written and
/// summed in one pass (`FusedElementwiseAndSum`); both equal the unfused program to rounding.
final class AxisFusionTests: XCTestCase {
    /// The names of the ops `program` applies, in program order.
    func names(_ program: Program) -> [String] {
        program.instructions.compactMap { if case let .apply(op, _) = $0.operation { op.name } else { nil } }
    }

    /// Every output of `fused` is within `1e-13` (relative) of the same output of `reference`.
    func assertClose(_ fused: Program, _ reference: Program, at xs: [Tensor], file: StaticString = #filePath, line: UInt = #line) {
        for (u, v) in zip(fused.outputs(at: xs), reference.outputs(at: xs)) {
            XCTAssertEqual(u.shape, v.shape, file: file, line: line)
            XCTAssertTrue(u.isApproximatelyEqual(to: v, tolerance: 1e-13), "\(u.scalars.prefix(8)) vs \(v.scalars.prefix(8))", file: file, line: line)
        }
    }

    /// A row sum that is the tree's only reader becomes the tree's fused sum, for targets `[H]` and
    /// `[1, H]`, batches that are not a multiple of the block (rows straddle blocks), rows longer than a
    /// block, and a tree large enough to be cut into pieces (partial row sums added in piece order).
    func testRowSumThatIsTheOnlyReaderIsAccumulated() {
        let cases: [(shape: [Int], target: [Int])] = [
            ([37, 29], [29]), ([37, 29], [1, 29]), ([2, 700], [700]), ([3, 5, 7], [5, 7]), ([3, 5, 7], [7]), ([700, 50], [50]),
        ]
        for (shape, target) in cases {
            let row = OpGradcheckTests.input([shape[shape.count - 1]], offset: 1)
            let program = stage(shapes: [shape, [row.count]]) { xs in (tanh(xs[0] * 2 + xs[1]) * exp(-xs[0])).sum(toShape: target) }
            let fused = program.optimized()
            XCTAssertEqual(names(fused), ["fused(multiply,add,tanh,negate,exp,multiply).sum"], "\(shape) → \(target)")
            XCTAssertEqual(fused.outputShapes, [target])
            assertClose(fused, program, at: [OpGradcheckTests.input(shape), row])
        }
        let large = FusedElementwise(steps: [], shape: [700, 50], sumShape: [50])
        XCTAssertEqual(FusedElementwise.pieces(35000, summingAxes: large.summingAxes), 4, "the [700, 50] case runs in pieces")
    }

    /// A tree that is summed and read elsewhere too (here by a matmul) is written and summed in one
    /// pass; its elements are the unfused bits, its sum equal to rounding; a single row is left alone.
    func testTreeReadElsewhereIsWrittenAndSummedInOnePass() {
        let cases: [(shape: [Int], target: [Int])] = [([37, 29], [29]), ([37, 29], [1, 29]), ([37, 29], []), ([700, 50], [50]), ([1, 29], [29])]
        for (shape, target) in cases {
            let columns = shape[shape.count - 1]
            let weights = OpGradcheckTests.input([columns, 3], offset: 2), scale = OpGradcheckTests.input(target, offset: 3)
            let program = stage(shapes: [shape]) { xs in
                let tree = tanh(xs[0] * 2 + 1) * exp(-xs[0])
                return (tree.sum(toShape: target) * scale).sum() + matmul(tree, weights).sum()
            }
            let fused = program.optimized()
            let expected = elementCount(shape) == elementCount(target) ? 0 : 1
            XCTAssertEqual(names(fused).filter { $0.hasSuffix(".sum+tree") }.count, expected, "\(shape) → \(target): \(names(fused))")
            assertClose(fused, program, at: [OpGradcheckTests.input(shape)])
        }
    }

    /// The fused tree-and-sum primitive's rules pass gradcheck at first and second order.
    func testTreeAndSumPassesGradcheck() {
        let x = OpGradcheckTests.input([4, 3]), weights = OpGradcheckTests.input([3, 3], offset: 1)
        let program = stage(shape: [4, 3]) { x in
            let tree = tanh(x * 2 + 1) * exp(-x)
            return matmul(tree, weights) * tree.sum(toShape: [3])
        }.optimized()
        XCTAssertTrue(names(program).contains("fused(multiply,add,tanh,negate,exp,multiply).sum+tree"), "\(names(program))")
        let f: (Tensor) -> Tensor = { program.outputs(at: [$0])[0] }
        let first = gradcheck(at: x, of: f)
        XCTAssertTrue(first.passes(), "\(first)")
        let projection = OpGradcheckTests.weights(like: f(x))
        let second = gradcheck(at: x) { x in gradient(at: x) { y in (f(y) * projection).sum() } }
        XCTAssertTrue(second.passes(), "\(second)")
        XCTAssertTrue(program.swiftSource(functionName: "f").contains(".sum(toShape: [3])"))
    }

    /// How a tree reads a broadcast operand: rows, columns, a run of middle axes; not two separate runs.
    func testBroadcastOperandLayouts() {
        XCTAssertTrue(FusedElementwise.layout([29], in: [37, 29])! == (29, 1))
        XCTAssertTrue(FusedElementwise.layout([1, 29], in: [37, 29])! == (29, 1))
        XCTAssertTrue(FusedElementwise.layout([37, 1], in: [37, 29])! == (37, 29))
        XCTAssertTrue(FusedElementwise.layout([5, 1], in: [2, 5, 3])! == (5, 3))
        XCTAssertTrue(FusedElementwise.layout([2, 1, 1], in: [2, 5, 3])! == (2, 15))
        XCTAssertTrue(FusedElementwise.layout([], in: [2, 5, 3])! == (1, 1))
        XCTAssertNil(FusedElementwise.layout([3, 1, 4], in: [3, 5, 4]))
        XCTAssertNil(FusedElementwise.layout([4, 3], in: [3, 5, 4]))
        XCTAssertNil(FusedElementwise.layout([2, 2, 5, 3], in: [2, 5, 3]))
    }

    /// A column operand (`[m, 1]` against `[m, n]`, each element repeated along a row) and a broadcast
    /// column are read inside the tree, with batches that straddle blocks and a tree cut into pieces;
    /// equal to the unfused ops.
    func testColumnOperandsAreReadInTheTree() {
        for shape in [[37, 29], [700, 50]] {
            let (m, n) = (shape[0], shape[1])
            let program = stage(shapes: [shape, [m, 1], [n]]) { xs in
                let scaled = tanh(xs[0] * xs[1] + xs[2]) * xs[1].broadcast(to: shape)
                return (scaled - xs[1]).sum(toShape: [n])
            }
            let fused = program.optimized()
            XCTAssertEqual(names(fused), ["fused(multiply,add,tanh,multiply,subtract).sum"], "\(names(fused))")
            let xs = [OpGradcheckTests.input(shape), OpGradcheckTests.input([m, 1], offset: 1), OpGradcheckTests.input([n], offset: 2)]
            assertClose(fused, program, at: xs)
        }
    }

    /// The P4 MLP and a smaller MLP-like function of odd sizes: the staged, optimized gradient and both
    /// HVPs (whose bias adjoints are fused row sums) equal the eager engine's.
    func testMLPGradientAndHVPMatchTheEagerEngine() {
        let mlp = MLPWorkload()
        let x = OpGradcheckTests.input([37, 5]), y = OpGradcheckTests.input([37], offset: 1)
        let small: (Tensor) -> Tensor = { theta in
            let w1 = theta[0..<15].reshaped(to: [5, 3]), b1 = theta[15..<18], w2 = theta[18..<21]
            return softplus(-(y * matmul(tanh(matmul(x, w1) + b1), w2.reshaped(to: [3, 1])).reshaped(to: [37]))).mean()
        }
        let smallTheta = OpGradcheckTests.input([21], offset: 2), smallDirection = OpGradcheckTests.input([21], offset: 3)
        for (f, theta, direction) in [(mlp.loss, mlp.theta, mlp.direction), (small, smallTheta, smallDirection)] {
            let program = stage(shape: theta.shape, f)
            let gradientProgram = program.gradient().optimized()
            XCTAssertTrue(names(gradientProgram).contains { $0.hasSuffix(".sum+tree") }, "\(names(gradientProgram))")
            XCTAssertTrue(gradientProgram(theta).isApproximatelyEqual(to: gradient(at: theta, of: f), tolerance: 1e-13))
            let eagerHVP = hvp(at: theta, direction: direction, mode: .forwardOverReverse, of: f)
            for mode in [HVPMode.reverseOverReverse, .forwardOverReverse] {
                let staged = program.hvp(mode: mode).optimized()
                XCTAssertTrue(staged(theta, direction).isApproximatelyEqual(to: eagerHVP, tolerance: 1e-12), "\(mode)")
            }
        }
    }
}
