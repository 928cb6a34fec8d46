import Foundation
import XCTest
@testable import Bilevel

/// Gradients, HVPs and hypergradients computed on 8 threads at once equal the serial results bit for bit:
/// differentiation levels are owned by the thread that opens them, and nothing global is shared.
final class RobustnessConcurrencyTests: XCTestCase {
    /// Results written by concurrent workers, behind a lock.
    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Int: [Double]] = [:]
        func store(_ value: [Double], at index: Int) { lock.withLock { values[index] = value } }
        func value(at index: Int) -> [Double]? { lock.withLock { values[index] } }
    }

    /// Everything one worker computes for job `index`: a gradient, an HVP and three hypergradients (RAD,
    /// FAD, implicit CG) of a problem built inside the worker (`BilevelProblem` holds closures and is
    /// not `Sendable`: build one per task).
    static func work(_ index: Int) throws -> [Double] {
        let x = Tensor(shape: [4]) { Foundation.sin(Double($0 + index)) }
        let f: (Tensor) -> Tensor = { v in (exp(0.3 * v) * v).sum() + v.squaredNorm() * v.sum() }
        let g = gradient(at: x, of: f)
        let h = hvp(at: x, direction: Tensor(ones: [4]), of: f)
        let problem = BilevelProblem(
            upper: { x, y in (y * y * x).sum() + y.sum() },
            lower: { x, y in 0.5 * (y - tanh(x)).squaredNorm() + 0.1 * (y * y * y * y).sum() },
            innerSteps: 30, lowerShape: [4])
        let y0 = Tensor(zeros: [4])
        let methods: [any HypergradientMethod] = [ReverseUnroll(), ForwardUnroll(), Implicit(solver: .conjugateGradient())]
        var hypergradients: [Double] = []
        for method in methods { hypergradients += try method.hypergradient(of: problem, at: x, from: y0).hypergradient.scalars }
        return g.scalars + h.scalars + hypergradients
    }

    func testEightThreadsMatchSerialBitForBit() throws {
        let jobs = 16
        let serial = try (0..<jobs).map(Self.work)
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for job in stride(from: worker, to: jobs, by: 8) {
                if let value = try? Self.work(job) { results.store(value, at: job) }
            }
        }
        for job in 0..<jobs {
            guard let parallel = results.value(at: job) else { XCTFail("job \(job) threw on a worker thread"); continue }
            XCTAssertEqual(parallel.map(\.bitPattern), serial[job].map(\.bitPattern), "job \(job)")
        }
    }
}
