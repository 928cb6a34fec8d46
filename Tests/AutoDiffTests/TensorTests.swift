import XCTest
@testable import AutoDiff

/// The `Tensor` value type itself: construction, shape bookkeeping and the heap policy large tensors install.
final class TensorTests: XCTestCase {
    func testConstructorsAgreeOnShapeCountAndRank() {
        let filled = Tensor(repeating: 2, shape: [2, 3])
        XCTAssertEqual(filled.count, 6)
        XCTAssertEqual(filled.rank, 2)
        XCTAssertEqual(filled.scalars, Array(repeating: 2, count: 6))
        XCTAssertEqual(Tensor(shape: [3, 2], generator: { Double($0) }).scalars, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(Tensor(zeros: [4]).scalars, [0, 0, 0, 0])
        XCTAssertEqual(Tensor(ones: [1, 2]).shape, [1, 2])
        XCTAssertEqual(Tensor(3.5).rank, 0)
        XCTAssertEqual(Tensor(3.5).scalar, 3.5)
        XCTAssertEqual(Tensor([1, 2, 3]).shape, [3])
    }

    func testNonFiniteDetectionAndApproximateEquality() {
        XCTAssertTrue(Tensor([1, .nan]).hasNonFinite)
        XCTAssertTrue(Tensor([1, .infinity]).hasNonFinite)
        XCTAssertFalse(Tensor([1, 2]).hasNonFinite)
        XCTAssertTrue(Tensor([1, 2]).isApproximatelyEqual(to: Tensor([1, 2 + 1e-13])))
        XCTAssertFalse(Tensor([1, 2]).isApproximatelyEqual(to: Tensor([1, 2.001])))
        XCTAssertFalse(Tensor([1, 2]).isApproximatelyEqual(to: Tensor(shape: [1, 2], scalars: [1, 2])))
    }

    #if os(Linux)
    /// The first large tensor raises glibc's thresholds (unless the user set them through GLIBC_TUNABLES),
    /// and large element-wise work still computes the same numbers afterwards.
    func testLargeTensorInstallsHeapPolicyAndValuesAreUnchanged() throws {
        let userTunables = ProcessInfo.processInfo.environment["GLIBC_TUNABLES"] ?? ""
        try XCTSkipIf(userTunables.contains("threshold"), "GLIBC_TUNABLES sets a malloc threshold")
        let n = HeapPolicy.largeCount * 4
        let x = Tensor(shape: [n], generator: { Double($0 % 7) })
        XCTAssertTrue(HeapPolicy.installed)
        var sum = Tensor(zeros: [n])
        for _ in 0..<3 { sum = sum + x * x }
        XCTAssertEqual(sum.scalars[6], 108)
        XCTAssertEqual(sum.scalars[n - 1], 3 * Double(((n - 1) % 7) * ((n - 1) % 7)))
    }
    #endif
}
