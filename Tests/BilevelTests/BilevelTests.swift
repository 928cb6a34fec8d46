import XCTest
@testable import Bilevel
final class BilevelPlaceholderTests: XCTestCase { func testImport() { XCTAssertEqual(Tensor(2).scalar, 2) } }
