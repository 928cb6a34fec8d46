import XCTest
@testable import AutoDiff
final class PlaceholderTests: XCTestCase { func testTensorShape() { XCTAssertEqual(Tensor(shape: [2, 3], scalars: Array(repeating: 1, count: 6)).count, 6) } }
