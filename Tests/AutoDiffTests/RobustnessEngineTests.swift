import XCTest
@testable import AutoDiff

/// The engine's bad-input classes, through the throwing validators behind every stop (the stops
/// themselves end the process, so `.ci/release-checks` checks their messages in a release build).
final class RobustnessEngineTests: XCTestCase {
    func error(_ body: () throws -> Any) -> AutoDiffError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? AutoDiffError
        }
    }

    /// Shapes: negative extents are caught before allocating, naming the shape and the axis.
    func testNegativeExtentsNameTheShape() {
        for op in ["Tensor(repeating:shape:)", "Tensor(zeros:)", "Tensor(shape:generator:)"] {
            guard case let .invalidArgument(name, reason)? = error({ try Shapes.elementCount(of: [2, -3, 4], op: op) }) else {
                return XCTFail("a negative extent was accepted")
            }
            XCTAssertEqual(name, op)
            XCTAssertTrue(reason.contains("[2, -3, 4]") && reason.contains("-3 on axis 1"), reason)
        }
        XCTAssertEqual(try Shapes.elementCount(of: [2, 0, 4], op: "t"), 0)
        XCTAssertEqual(try Shapes.elementCount(of: [], op: "t"), 1)
    }

    func testOverflowingShapesAreCaught() {
        guard case let .invalidArgument(_, reason)? = error({ try Shapes.elementCount(of: [1 << 40, 1 << 40], op: "Tensor(zeros:)") }) else {
            return XCTFail("an overflowing shape was accepted")
        }
        XCTAssertTrue(reason.contains("more elements than an Int"), reason)
    }

    /// Shapes: every binary-op validator names both shapes.
    func testShapeMismatchesNameBothShapes() {
        let cases: [(() throws -> Any, [String])] = [
            ({ try Shapes.broadcast([2, 3], [4], op: "+") }, ["+", "[2, 3]", "[4]", "axis 1"]),
            ({ try Shapes.matmul([2, 3], [4, 5]) }, ["matmul", "[2, 3]", "[4, 5]", "inner extents 3 and 4"]),
            ({ try Shapes.reshape([2, 3], to: [4, 2]) }, ["reshape", "[2, 3]", "[4, 2]", "6 elements"]),
            ({ try Shapes.reshape([2, 3], to: [-2, -3]) }, ["reshape", "[-2, -3]"]),
        ]
        for (body, fragments) in cases {
            guard let caught = error(body), case .shapeMismatch = caught else { XCTFail("no shapeMismatch for \(fragments)"); continue }
            for fragment in fragments { XCTAssertTrue(caught.description.contains(fragment), "\(caught) lacks \(fragment)") }
        }
        // Broadcasting that is valid stays valid.
        XCTAssertEqual(try Shapes.broadcast([1], [3]), [3])
    }

    /// Parameters: an axis out of range names the axis and the shape.
    func testAxisOutOfRange() {
        guard case let .invalidArgument(op, reason)? = error({ try Shapes.normalize(axis: -3, of: [2, 3], op: "sum(alongAxis:)") }) else {
            return XCTFail("axis -3 was accepted for a rank-2 shape")
        }
        XCTAssertEqual(op, "sum(alongAxis:)")
        XCTAssertTrue(reason.contains("axis -3") && reason.contains("[2, 3]"), reason)
    }

    /// Empty tensors and non-scalar outputs: the descriptions the stops print name the op and shape.
    func testEmptyAndNonScalarDescriptions() {
        XCTAssertEqual(
            AutoDiffError.emptyTensor(op: "mean() of shape [0]").description,
            "mean() of shape [0]: the tensor is empty (shape with a zero extent)")
        XCTAssertTrue(AutoDiffError.nonScalarOutput(transform: "gradient", shape: [3]).description.contains("returned shape [3]"))
    }

    /// Non-finite values: gradcheck reports a NaN derivative instead of comparing it away.
    func testGradcheckReportsNonFiniteDerivatives() {
        let report = gradcheck(at: Tensor([0, 1])) { sqrt($0) }
        XCTAssertFalse(report.isFinite)
        XCTAssertFalse(report.passes())
    }
}
