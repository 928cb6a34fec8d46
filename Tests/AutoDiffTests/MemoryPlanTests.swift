import XCTest
@testable import AutoDiff
import Workloads

/// The memory plan: slots reused by liveness, aliases for reshapes and leading slices, outputs written in
/// place, and no op writing over a buffer it reads or over a value still to be read.
final class MemoryPlanTests: XCTestCase {
    /// The arena range `[start, end)` of `value`, following aliases, or nil outside the arena.
    static func arenaRange(_ plan: MemoryPlan, _ value: Int) -> Range<Int>? {
        var root = value, offset = 0
        while case let .alias(source, extra) = plan.locations[root] {
            root = source
            offset += extra
        }
        guard case let .arena(start) = plan.locations[root] else { return nil }
        let count = elementCount(plan.shapes[value])
        return (start + offset)..<(start + offset + count)
    }

    /// A chain of 12 element-wise ops (no fusion) needs two slots of the chain's size, not twelve.
    func testSlotsAreReusedAlongAChain() {
        let program = stage(shape: [1000]) { x in
            var y = x
            for k in 0..<12 { y = k % 2 == 0 ? sin(y) : y * y }
            return y.sum()
        }
        XCTAssertEqual(program.applicationCount, 13)
        let plan = MemoryPlan(program)
        XCTAssertEqual(plan.arenaSize, 2 * 1000, "two slots of 1000 doubles")
        XCTAssertEqual(plan.locations[program.outputs[0]], .output(0))
    }

    /// Reshapes and slices of the outermost axis point into their input; other slices are copies.
    func testReshapesAndLeadingSlicesAlias() {
        let program = stage(shape: [6, 4]) { x in
            let rows = x.slice(alongAxis: 0, 2..<5), flat = x.reshaped(to: [24])
            let columns = x.slice(alongAxis: 1, 1..<3)
            return rows.sum() + flat[3..<9].sum() + columns.sum()
        }
        let plan = MemoryPlan(program)
        var aliases = [MemoryPlan.Location]()
        for (i, instruction) in program.instructions.enumerated() {
            guard case let .apply(op, _) = instruction.operation else { continue }
            if op is Reshape || op is Slice { aliases.append(plan.locations[i]) }
        }
        XCTAssertEqual(aliases, [.alias(0, offset: 8), .alias(0, offset: 0), .arena(0), .alias(2, offset: 3)])
        let x = Tensor(shape: [6, 4]) { Double($0) }
        XCTAssertEqual(program(x).scalar, program.interpretedOutputs(at: [x])[0].scalar)
    }

    /// In every P4 program, no op's output range overlaps the range of an argument it reads, nor of a
    /// value read after it (its slot is free while it is written).
    func testNoBufferIsOverwrittenWhileLive() {
        let mlp = MLPWorkload(), rosenbrock = RosenbrockWorkload(n: 500)
        var programs = [Program]()
        for program in [stage(shape: mlp.theta.shape, mlp.loss), stage(shape: [500], rosenbrock.value)] {
            for derived in [program.gradient(), program.hvp(mode: .reverseOverReverse), program.hvp(mode: .forwardOverReverse)] {
                programs += [derived, derived.optimized()]
            }
        }
        for program in programs {
            let plan = MemoryPlan(program)
            var lastRead = [Int](repeating: -1, count: program.instructions.count)
            for (i, instruction) in program.instructions.enumerated() {
                if case let .apply(_, arguments) = instruction.operation { for a in arguments { lastRead[a] = i } }
            }
            for value in program.outputs { lastRead[value] = Int.max }
            for (i, instruction) in program.instructions.enumerated() {
                guard case .apply = plan.steps[i], let written = Self.arenaRange(plan, i), !written.isEmpty else { continue }
                // Every value defined before i and read at or after i keeps its buffer.
                for j in 0..<i where lastRead[j] >= i {
                    if let range = Self.arenaRange(plan, j) {
                        XCTAssertFalse(written.overlaps(range), "value \(i) (\(instruction.shape)) overwrites live value \(j)")
                    }
                }
            }
        }
    }
}
