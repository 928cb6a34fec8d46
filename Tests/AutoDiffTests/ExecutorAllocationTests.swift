import AllocationCounter
import XCTest
@testable import AutoDiff
import Workloads

/// Heap allocations per call of a compiled program, counted by interposing the C allocator in the test
/// executable (Tests/AllocationCounter, Linux/glibc; skipped elsewhere): zero per steady-state call of
/// `outputs(at:into:)` for the P4 MLP gradient and HVPs and the Rosenbrock HVPs.
final class ExecutorAllocationTests: XCTestCase {
    /// The allocations made by `calls` calls of `body`, after two warm-up calls.
    func allocations(calls: Int = 10, _ body: () -> Void) throws -> Int {
        if allocation_counter_available() != 1 { throw XCTSkip("allocations are counted on Linux/glibc only") }
        body()
        body()
        allocation_counter_start()
        for _ in 0..<calls { body() }
        return allocation_counter_stop()
    }

    /// The P4 MLP loss (B-D32-H64 tanh network, softplus loss) on the first `batch` rows of the workload.
    static func mlpLoss(batch: Int) -> (Tensor) -> Tensor {
        let mlp = MLPWorkload(), x = mlp.x[0..<batch], y = mlp.y[0..<batch]
        let (d, h) = (mlp.inputs, mlp.hidden)
        return { theta in
            let w1 = theta[0..<(d * h)].reshaped(to: [d, h]), b1 = theta[(d * h)..<(d * h + h)]
            let w2 = theta[(d * h + h)..<(d * h + 2 * h)], b2 = theta[(d * h + 2 * h)..<(d * h + 2 * h + 1)]
            return softplus(-(y * (matmul(tanh(matmul(x, w1) + b1), w2) + b2))).mean()
        }
    }

    /// The optimized gradient and HVP programs of `f` at `x` (direction `v`).
    static func programs(_ name: String, _ f: @escaping (Tensor) -> Tensor, at x: Tensor, direction v: Tensor)
        -> [(String, Program, [Tensor])]
    {
        let program = stage(shape: x.shape, f)
        return [("\(name) gradient", program.gradient().optimized(), [x])]
            + [HVPMode.reverseOverReverse, .forwardOverReverse].map { mode in
                ("\(name) hvp \(mode)", program.hvp(mode: mode).optimized(), [x, v])
            }
    }

    /// Programs whose kernels all stay on one core: the P4 MLP at batch 32 (its products are below the
    /// multi-core threshold) and Rosenbrock at n = 1000.
    static func singleCorePrograms() -> [(String, Program, [Tensor])] {
        let mlp = MLPWorkload(), rosenbrock = RosenbrockWorkload(n: 1000)
        return programs("P4 mlp B32", mlpLoss(batch: 32), at: mlp.theta, direction: mlp.direction)
            + programs("P4 rosenbrock n1000", rosenbrock.value, at: rosenbrock.x, direction: rosenbrock.direction)
    }

    /// The matrix-matrix products of `program` (results with more than one row and column).
    static func matrixProducts(_ program: Program) -> Int {
        program.instructions.filter { instruction in
            guard case let .apply(op, _) = instruction.operation, op is Matmul else { return false }
            return instruction.shape.count == 2 && instruction.shape[0] > 1 && instruction.shape[1] > 1
        }.count
    }

    /// Zero allocations per call of `outputs(at:into:)`: buffers come from the program's memory plan and
    /// the GEMM packs its panels into the calling thread's scratch (Sources/CKernels/Scratch.c).
    func testCallsIntoCallerBuffersAllocateNothing() throws {
        for (name, program, arguments) in Self.singleCorePrograms() {
            var results = [Tensor]()
            let count = try allocations { program.outputs(at: arguments, into: &results) }
            XCTAssertEqual(count, 0, "\(name): \(count) allocations in 10 calls")
            print("\(name): \(count / 10) allocations per call, \(Self.matrixProducts(program)) matrix-matrix products")
        }
    }

    /// `outputs(at:)` allocates only what it returns: each output's elements, the array holding them,
    /// and (in an unoptimized build) the closure that builds them.
    func testCallsReturningTensorsAllocateOnlyTheResults() throws {
        for (name, program, arguments) in Self.singleCorePrograms() {
            let count = try allocations { _ = program.outputs(at: arguments) }
            XCTAssertLessThanOrEqual(count, 10 * (program.outputs.count + 3), "\(name): \(count) allocations in 10 calls")
        }
    }

    /// At the bench sizes (P4 MLP B128, Rosenbrock n = 10⁵) the large kernels run on several cores through
    /// `parallelFor`, whose Swift side allocates three blocks per call in this unoptimized test build
    /// (`withoutActuallyEscaping` and the closure's box as the body crosses into the C pool, which itself
    /// allocates nothing — measured): the only allocations left, at most that cost per kernel that may go
    /// multi-core.
    func testMultiCoreCallsAllocateOnlyForTheDispatch() throws {
        let dispatchCost = try allocations(calls: 1) { parallelFor(2) { _ in } } + 1
        let mlp = MLPWorkload(), rosenbrock = RosenbrockWorkload(n: 100_000)
        let programs = Self.programs("P4 mlp", mlp.loss, at: mlp.theta, direction: mlp.direction)
            + Self.programs("P4 rosenbrock n100000", rosenbrock.value, at: rosenbrock.x, direction: rosenbrock.direction)
        for (name, program, arguments) in programs {
            // The applications that may dispatch to several cores: every product, and the fused trees
            // large enough to be split.
            let multiCoreKernels = program.instructions.filter { instruction in
                guard case let .apply(op, _) = instruction.operation else { return false }
                if let fused = op as? FusedElementwise {
                    return FusedElementwise.pieces(elementCount(fused.shape)) > 1
                }
                return op is Matmul || op is NormalProduct
            }.count
            var results = [Tensor]()
            let count = try allocations { program.outputs(at: arguments, into: &results) }
            XCTAssertLessThanOrEqual(count, 10 * dispatchCost * multiCoreKernels, "\(name): \(count) allocations in 10 calls")
            print("\(name): \(count / 10) allocations per call, \(multiCoreKernels) multi-core kernels, \(dispatchCost) per dispatch")
        }
    }

    /// The counter sees allocations (so a zero above is not a dead counter).
    func testCounterCountsAllocations() throws {
        let count = try allocations { _ = Tensor(zeros: [1000]) }
        XCTAssertGreaterThanOrEqual(count, 10)
    }
}
