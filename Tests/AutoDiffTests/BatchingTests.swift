import Foundation
import XCTest
@testable import AutoDiff

/// `Program.vmap` equals a loop of unbatched runs (≤ 1e-13 relative) on every op of `OpGradcheckTests`
/// and on their gradient programs, with every batched/unbatched combination of the operands; the ops
/// with a batching rule emit no per-element loop; a user primitive without a rule goes through the
/// default (slice, apply, stack).
final class BatchingTests: XCTestCase {
    static let batchSize = 3

    /// Batch element `b` of an op's input: `x` scaled by `1 + 0.05 b` (keeps signs, positivity and
    /// positive definiteness of the cases' inputs).
    static func element(_ x: Tensor, _ b: Int) -> Tensor { x * (1 + 0.05 * Double(b)) }

    /// The batch elements of `x` stacked along a new leading axis.
    static func stacked(_ x: Tensor) -> Tensor {
        concatenate((0..<batchSize).map { element(x, $0).expandingShape(at: 0) }, alongAxis: 0)
    }

    func assertClose(_ a: Tensor, _ b: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, message, file: file, line: line)
        XCTAssertTrue(a.isApproximatelyEqual(to: b, tolerance: 1e-13), "\(message): \(a) vs \(b)", file: file, line: line)
    }

    /// Checks `program.vmap` with `flags` against the loop of `program` on each batch element, and
    /// returns whether the batched program fell back to a per-element loop somewhere (a `concatenate`
    /// the original program does not have).
    @discardableResult
    func checkBatched(_ name: String, _ program: Program, at xs: [Tensor], batched flags: [Bool]) -> Bool {
        let vmapped = program.vmap(batchedInputs: flags, batchSize: Self.batchSize)
        let arguments = xs.indices.map { flags[$0] ? Self.stacked(xs[$0]) : xs[$0] }
        let results = vmapped.outputs(at: arguments)
        for b in 0..<Self.batchSize {
            let loop = program.outputs(at: xs.indices.map { flags[$0] ? Self.element(xs[$0], b) : xs[$0] })
            for k in loop.indices { assertClose(results[k][b], loop[k], "\(name) \(flags) output \(k) row \(b)") }
        }
        return vmapped.description.contains("concatenate(") && !program.description.contains("concatenate(")
    }

    /// Every unary case, and the gradient program of ⟨w, f⟩ (which batches the VJP rules' ops too).
    func testEveryUnaryOpBatchedEqualsLoop() {
        var looped = [String]()
        for c in OpGradcheckTests.unaryCases where c.name != "choleskySolve" {
            let w = OpGradcheckTests.weights(like: c.f(c.x))
            if checkBatched(c.name, stage(shape: c.x.shape, c.f), at: [c.x], batched: [true]) { looped.append(c.name) }
            let gradient = stage(shape: c.x.shape) { (c.f($0) * w).sum() }.gradient()
            if checkBatched("∇\(c.name)", gradient, at: [c.x], batched: [true]) { looped.append("∇\(c.name)") }
        }
        // Only the ops without a rule loop: the linear solve (and the gather behind integer indexing
        // in `index`, whose gradient scatters).
        XCTAssertEqual(looped, ["solve-b", "∇solve-b", "solve-a", "∇solve-a"])
    }

    /// Every binary case with each operand batched alone and both batched, and their gradient programs.
    func testEveryBinaryOpBatchedEqualsLoop() {
        var looped = [String]()
        for c in OpGradcheckTests.binaryCases {
            let w = OpGradcheckTests.weights(like: c.f(c.x, c.y))
            let program = stage(shapes: [c.x.shape, c.y.shape]) { c.f($0[0], $0[1]) }
            let gradient = stage(shapes: [c.x.shape, c.y.shape]) { (c.f($0[0], $0[1]) * w).sum() }.gradient()
            for flags in [[true, false], [false, true], [true, true]] {
                if checkBatched(c.name, program, at: [c.x, c.y], batched: flags) { looped.append("\(c.name) \(flags)") }
                if checkBatched("∇\(c.name)", gradient, at: [c.x, c.y], batched: flags) { looped.append("∇\(c.name) \(flags)") }
            }
        }
        // Only batched × batched matrix products with all three extents above 1 loop.
        XCTAssertEqual(looped.filter { !$0.hasPrefix("∇") }, ["matmul [true, true]", "matmul-tA [true, true]", "matmul-tB [true, true]", "matmul-tAtB [true, true]"])
    }

    /// Broadcasting between operands of different ranks, one batched: the unbatched operand's axes stay
    /// right-aligned with the batched one's own axes (not with its batch axis).
    func testBroadcastingAcrossRanksKeepsAxesAligned() {
        let cases: [([Int], [Int])] = [([3], [2, 3]), ([2, 3], [3]), ([], [2, 3]), ([2, 1], [3]), ([3], [3]), ([2, 3], [])]
        for (sa, sb) in cases {
            let program = stage(shapes: [sa, sb]) { $0[0] * $0[1] - $0[1] / ($0[0] * $0[0] + 1) }
            let xs = [OpGradcheckTests.input(sa), OpGradcheckTests.input(sb, offset: 1)]
            for flags in [[true, false], [false, true], [true, true]] {
                XCTAssertFalse(checkBatched("\(sa) ∘ \(sb)", program, at: xs, batched: flags))
            }
        }
    }

    /// The model ops outside the gradcheck list: maxima along an axis (a rule), gathers and masked
    /// selections (the default, values and gradient programs; a maximum's VJP reads the argmax, so its
    /// gradient is not stageable).
    func testSelectionOpsBatchedEqualLoop() {
        let indices = AxisIndices([2, 0, 1, 1, 0, 2], shape: [2, 3])
        let mask = Tensor(shape: [2, 3], scalars: [1, 0, 1, 0, 0, 1])
        let cases: [(name: String, f: (Tensor) -> Tensor, loops: Bool)] = [
            ("max-axis1", { ($0 * $0).maximum(alongAxis: 1) }, false),
            ("min-axis0", { sin($0).minimum(alongAxis: 0) }, false),
            ("gather", { $0.gathering(indices, alongAxis: 1) * $0 }, true),
            ("select", { select(mask, $0, $0 * $0) }, true),
        ]
        let x = OpGradcheckTests.input([2, 3])
        for (name, f, loops) in cases {
            XCTAssertEqual(checkBatched(name, stage(shape: [2, 3], f), at: [x], batched: [true]), loops, name)
            guard loops else { continue }
            let gradient = stage(shape: [2, 3]) { (f($0) * OpGradcheckTests.weights(like: f(x))).sum() }.gradient()
            checkBatched("∇\(name)", gradient, at: [x], batched: [true])
        }
    }

    /// The compiled element-wise arithmetic with an operand broadcast along a middle axis (what batched
    /// outer products and columns produce) equals the eager op, for each of the four ops.
    func testCompiledMiddleAxisBroadcastEqualsEager() {
        let shapes: [([Int], [Int])] = [([4, 3, 1], [4, 1, 5]), ([4, 3], [4, 1]), ([4, 1, 1], [4, 3, 1]), ([2, 1, 3], [2, 4, 1])]
        let ops: [(Tensor, Tensor) -> Tensor] = [{ $0 + $1 }, { $0 - $1 }, { $0 * $1 }, { $0 / $1 }]
        for (sa, sb) in shapes {
            let a = OpGradcheckTests.input(sa), b = OpGradcheckTests.positive(sb)
            for (k, op) in ops.enumerated() {
                assertClose(stage(shapes: [sa, sb]) { op($0[0], $0[1]) }.outputs(at: [a, b])[0], op(a, b), "op \(k) \(sa) \(sb)")
            }
        }
    }

    /// The normal product `Aᵀ(A v − b)` with `v` and/or `b` batched takes the GEMM form; a batched `A`
    /// loops.
    func testNormalProductBatchedEqualsLoop() {
        let a = OpGradcheckTests.input([5, 3]), v = OpGradcheckTests.input([3], offset: 1), b = OpGradcheckTests.input([5], offset: 2)
        let withTarget = stage(shapes: [[5, 3], [3], [5]]) { normalProduct($0[0], $0[1], minus: $0[2]) }
        for flags in [[false, true, false], [false, false, true], [false, true, true]] {
            XCTAssertFalse(checkBatched("normalProduct", withTarget, at: [a, v, b], batched: flags))
        }
        XCTAssertTrue(checkBatched("normalProduct", withTarget, at: [a, v, b], batched: [true, true, false]))
        let plain = stage(shapes: [[5, 3], [3]]) { normalProduct($0[0], $0[1]) }
        XCTAssertFalse(checkBatched("normalProduct", plain, at: [a, v], batched: [false, true]))
    }

    /// An output that depends on no batched argument is repeated along the batch axis.
    func testUnbatchedOutputIsRepeated() {
        let program = stage(shapes: [[2], [3]], outputs: { [exp($0[0]), $0[1].sum()] })
        let vmapped = program.vmap(batchedInputs: [false, true], batchSize: 4)
        let x = OpGradcheckTests.input([2]), y = OpGradcheckTests.input([4, 3])
        let outputs = vmapped.outputs(at: [x, y])
        XCTAssertEqual(outputs[0].shape, [4, 2])
        for b in 0..<4 {
            assertClose(outputs[0][b], exp(x), "row \(b)")
            assertClose(outputs[1][b], y[b].sum(), "sum \(b)")
        }
    }

    /// A user primitive that gives no batching rule is batched by the default: one application per
    /// batch element, stacked.
    func testUserPrimitiveWithoutRuleGoesThroughTheDefault() {
        let program = stage(shapes: [[3], [3]]) { CubeTimes()($0[0], $0[1]).sum() }
        let x = OpGradcheckTests.input([3]), y = OpGradcheckTests.input([3], offset: 1)
        for flags in [[true, false], [false, true], [true, true]] {
            XCTAssertTrue(checkBatched("cubeTimes", program, at: [x, y], batched: flags))
            XCTAssertTrue(checkBatched("∇cubeTimes", program.gradient(), at: [x, y], batched: flags))
        }
        let vmapped = program.vmap(batchedInputs: [true, false], batchSize: 5)
        XCTAssertEqual(vmapped.instructions.filter { $0.opName == "cubeTimes" }.count, 5)
    }
}

/// `y = a³ b`, a test primitive with no batching rule of its own.
struct CubeTimes: BinaryPrimitive {
    var name: String { "cubeTimes" }
    func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { a }
    func value(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor(shape: a.shape, scalars: zip(a.scalars, b.scalars).map { $0 * $0 * $0 * $1 }) }
    func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { 3 * t * a * a * b }
    func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t * a * a * a }
    func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { 3 * g * a * a * b }
    func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { g * a * a * a }
    func swiftSource(_ a: String, _ b: String) -> String { "CubeTimes()(\(a), \(b))" }
}

extension Program.Instruction {
    /// The name of the applied op, or `input`/`constant`.
    var opName: String {
        switch operation {
        case .input: "input"
        case .constant: "constant"
        case let .apply(op, _): op.name
        }
    }
}
