import XCTest
@testable import AutoDiff

/// Every shape check names both shapes (ops stop with these messages; the validators throw them).
final class ShapeErrorTests: XCTestCase {
    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testBroadcastNamesBothShapesAndTheAxis() {
        let text = message { _ = try Shapes.broadcast([2, 3], [4], op: "+") }
        XCTAssertTrue(text.contains("+") && text.contains("[2, 3]") && text.contains("[4]") && text.contains("axis 1"), text)
        XCTAssertEqual(try Shapes.broadcast([2, 1, 3], [4, 1]), [2, 4, 3])
    }

    func testMatmulNamesBothShapes() {
        let inner = message { _ = try Shapes.matmul([2, 3], [4, 5]) }
        XCTAssertTrue(inner.contains("[2, 3]") && inner.contains("[4, 5]") && inner.contains("inner extents 3 and 4"), inner)
        let vectors = message { _ = try Shapes.matmul([3], [3]) }
        XCTAssertTrue(vectors.contains("dot"), vectors)
        XCTAssertEqual(try Shapes.matmul([2, 3], [3]), [2])
    }

    func testReshapeAndAxisErrors() {
        let reshape = message { try Shapes.reshape([2, 3], to: [4, 2]) }
        XCTAssertTrue(reshape.contains("[2, 3]") && reshape.contains("[4, 2]"), reshape)
        let axis = message { _ = try Shapes.normalize(axis: 2, of: [2, 3], op: "sum(alongAxis:)") }
        XCTAssertTrue(axis.contains("axis 2") && axis.contains("[2, 3]"), axis)
        XCTAssertEqual(try Shapes.normalize(axis: -1, of: [2, 3], op: "sum"), 1)
    }

    func testNonScalarOutputMessage() {
        let text = AutoDiffError.nonScalarOutput(transform: "gradient", shape: [3, 2]).description
        XCTAssertTrue(text.contains("must return a scalar") && text.contains("[3, 2]"), text)
    }
}
