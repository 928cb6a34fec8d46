import XCTest
@testable import AutoDiff
import Workloads

/// `Program.specialized(binding:)`: binding arguments to constants folds what depends only on them, keeps
/// the rest, renumbers the remaining arguments, and computes the same outputs as the original program.
final class SpecializeTests: XCTestCase {
    /// A tensor of `shape` with deterministic pseudo-random entries in (−1, 1).
    private func random(_ shape: [Int], seed: Int) -> Tensor {
        Tensor(shape: shape) { i in sin(Double(seed * 7919 + i) * 12.9898) }
    }

    private func maximumRelativeError(_ actual: [Tensor], _ expected: [Tensor]) -> Double {
        zip(actual, expected).map { a, e in
            let scale = max(1, e.scalars.map(abs).max() ?? 0)
            return zip(a.scalars, e.scalars).map { abs($0 - $1) }.max()! / scale
        }.max()!
    }

    /// The staged P3 lower HVP `(x, w, v) ↦ ∇²_ww f(x, w) v` (hyper-cleaning, small sizes), optimized.
    private func cleaningHVP(_ p3: HyperCleaningWorkload) -> Program {
        stage(shapes: [[p3.n], [p3.d], [p3.d]]) { a in [hvp(at: a[1], direction: a[2]) { w in p3.lower(a[0], w) }] }.optimized()
    }

    func testSpecializedHVPEqualsTheOriginalAtRandomPoints() {
        // d ≥ 2n, so `Xᵀ(D ⊙ (X v))` stays as it is (no weighted Gram matrix: `WeightedGramTests`).
        let p3 = HyperCleaningWorkload(n: 10, m: 10, d: 20), program = cleaningHVP(p3)
        for seed in 0..<3 {
            let x = random([p3.n], seed: seed), w = random([p3.d], seed: seed + 10)
            let specialized = program.specialized(binding: [0: x, 1: w])
            XCTAssertEqual(specialized.inputShapes, [[p3.d]])
            XCTAssertLessThan(specialized.applicationCount, program.applicationCount)
            // The fused tree mixing σ(x), the labels and X v is split: its σ steps depend on x alone.
            XCTAssertTrue(program.description.contains("sigmoid"))
            XCTAssertFalse(specialized.description.contains("sigmoid"), "\(specialized)")
            // X is captured once per use while staging; the specialization keeps one copy.
            let matrices = specialized.instructions.filter { instruction in
                if case .constant = instruction.operation { return instruction.shape == [p3.n, p3.d] }
                return false
            }
            XCTAssertEqual(matrices.count, 1)
            for k in 0..<3 {
                let v = random([p3.d], seed: 100 * seed + k)
                XCTAssertLessThanOrEqual(maximumRelativeError(specialized.outputs(at: [v]), program.outputs(at: [x, w, v])), 1e-13)
            }
        }
    }

    /// Binding the middle argument renumbers the others: `(a, b, c) ↦ a ⊙ exp(b) + c·sum(b)` bound at b is a
    /// program of (a, c), in that order.
    func testBindingTheMiddleArgumentRenumbersTheOthers() {
        let program = stage(shapes: [[3], [3], [3]]) { s in [s[0] * exp(s[1]) + s[2] * s[1].sum(), s[0] - s[2]] }
        let b = random([3], seed: 1), a = random([3], seed: 2), c = random([3], seed: 3)
        let specialized = program.specialized(binding: [1: b])
        XCTAssertEqual(specialized.inputShapes, [[3], [3]])
        var inputs = [Int]()
        for instruction in specialized.instructions { if case let .input(k) = instruction.operation { inputs.append(k) } }
        XCTAssertEqual(inputs, [0, 1])
        XCTAssertLessThanOrEqual(maximumRelativeError(specialized.outputs(at: [a, c]), program.outputs(at: [a, b, c])), 1e-13)
        // exp(b) and sum(b) are folded: only the products, the sum and the difference of (a, c) remain.
        XCTAssertEqual(specialized.applicationCount, program.applicationCount - 2)
    }

    /// Nothing depends on the bound arguments alone: the program is the same size and computes the same.
    func testAProgramWithNothingToFoldStaysEqual() {
        let program = stage(shapes: [[4], [4]]) { s in [(s[0] * s[1]).sum() * s[1]] }
        let a = random([4], seed: 4), b = random([4], seed: 5)
        let specialized = program.specialized(binding: [:])
        XCTAssertEqual(specialized.applicationCount, program.applicationCount)
        XCTAssertEqual(specialized.inputShapes, program.inputShapes)
        XCTAssertEqual(specialized.outputs(at: [a, b])[0].scalars, program.outputs(at: [a, b])[0].scalars)
    }

    /// Binding every argument leaves a program of no arguments returning the folded values.
    func testBindingEveryArgumentLeavesConstants() {
        let program = stage(shapes: [[2], [2]]) { s in [s[0] * s[1] + 1] }
        let a = random([2], seed: 6), b = random([2], seed: 7)
        let specialized = program.specialized(binding: [0: a, 1: b])
        XCTAssertEqual(specialized.inputShapes, [])
        XCTAssertEqual(specialized.applicationCount, 0)
        XCTAssertEqual(specialized.outputs(at: [])[0].scalars, program.outputs(at: [a, b])[0].scalars)
    }

    /// Nothing is left to fold: every application of the specialized P3 HVP reads at least one value
    /// that depends on the remaining argument v (the cost of specializing is timed in the bench, not here).
    func testEveryApplicationLeftDependsOnTheFreeArgument() {
        let p3 = HyperCleaningWorkload(), program = cleaningHVP(p3)
        let specialized = program.specialized(binding: [0: p3.x0, 1: random([p3.d], seed: 8)])
        var dependsOnV = [Bool](repeating: false, count: specialized.instructions.count)
        for (i, instruction) in specialized.instructions.enumerated() {
            switch instruction.operation {
            case .input: dependsOnV[i] = true
            case .constant: dependsOnV[i] = false
            case let .apply(op, arguments):
                dependsOnV[i] = arguments.contains { dependsOnV[$0] }
                XCTAssertTrue(dependsOnV[i], "\(op.name) at %\(i) reads constants only:\n\(specialized)")
            }
        }
    }
}
