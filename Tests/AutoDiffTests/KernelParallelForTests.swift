import CKernels
import Dispatch
import Foundation
import XCTest
@testable import AutoDiff

/// `parallelFor` on the package's worker threads: every index runs exactly once (also nested, also from
/// many client threads at once, also beyond the pool's piece limit), the workers really run pieces
/// concurrently with the caller, and the kernels built on it give the same bits whether the pool or the
/// serial fallback ran them.
final class KernelParallelForTests: XCTestCase {
    /// Runs `parallelFor(count)` with each index counting its own slot; returns the counts.
    private func runCounts(_ count: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: count)
        counts.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress
            parallelFor(count) { index in base![index] += 1 }
        }
        return counts
    }

    func testEveryIndexRunsExactlyOnce() {
        for count in [0, 1, 2, 3, 8, 65, 1000, 70_000] {
            XCTAssertEqual(runCounts(count), [Int](repeating: 1, count: count), "count \(count)")
        }
    }

    /// A body that calls `parallelFor` again finds the pool taken and runs the inner loop serially.
    func testNestedCallsRunEveryInnerIndex() {
        var counts = [Int](repeating: 0, count: 8 * 5)
        counts.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress
            parallelFor(8) { outer in parallelFor(5) { inner in base![outer * 5 + inner] += 1 } }
        }
        XCTAssertEqual(counts, [Int](repeating: 1, count: 40))
    }

    /// With at least one worker, piece 0 waits for piece 1 to start: this finishes only if another
    /// thread picks up piece 1 while the first is still running (serially it would time out).
    func testWorkersRunPiecesConcurrentlyWithTheCaller() throws {
        guard ckernels_parallel_workers() > 0 else { throw XCTSkip("one core: no worker threads") }
        let started = DispatchSemaphore(value: 0)
        var waited: DispatchTimeoutResult = .timedOut
        withUnsafeMutablePointer(to: &waited) { result in
            parallelFor(2) { piece in
                if piece == 0 { result.pointee = started.wait(timeout: .now() + 20) } else { started.signal() }
            }
        }
        XCTAssertEqual(waited, .success)
    }

    /// 16 client threads call the parallel kernels at once (most find the pool taken and run
    /// serially): each result has exactly the bits of the same product computed alone.
    func testConcurrentCallersGetTheBitsOfASingleCaller() {
        let (rows, columns) = (1200, 130)
        let a = Tensor(shape: [rows, columns]) { Foundation.sin(0.013 * Double($0 * $0 % 997) + 0.2) }
        let v = Tensor(shape: [columns]) { Foundation.cos(0.7 * Double($0)) }
        let b = Tensor(shape: [rows]) { Foundation.sin(0.3 * Double($0)) }
        let m = Tensor(shape: [300, 200]) { Foundation.cos(0.011 * Double($0 % 1009)) }
        let expectedNormal = normalProduct(a, v, minus: b).scalars, expectedGEMM = matmul(m, a.reshaped(to: [200, 780])).scalars
        var results = [[Double]](repeating: [], count: 32)
        results.withUnsafeMutableBufferPointer { slots in
            let base = UncheckedPointer(slots.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: 16) { job in
                base.value[2 * job] = normalProduct(a, v, minus: b).scalars
                base.value[2 * job + 1] = matmul(m, a.reshaped(to: [200, 780])).scalars
            }
        }
        for job in 0..<16 {
            XCTAssertEqual(results[2 * job], expectedNormal, "job \(job) normalProduct")
            XCTAssertEqual(results[2 * job + 1], expectedGEMM, "job \(job) matmul")
        }
    }
}

/// A pointer handed to concurrent jobs that each write their own slots.
private struct UncheckedPointer<Pointee>: @unchecked Sendable {
    let value: UnsafeMutablePointer<Pointee>
    init(_ value: UnsafeMutablePointer<Pointee>) { self.value = value }
}
