import Foundation
import XCTest
@testable import AutoDiff

/// The vector `tanh`, `exp`, `sigmoid`, `softplus` and `log` kernels, on every instruction set, against libm, in units in the last place, over the whole range and at the
/// special values.
final class VectorMathTests: XCTestCase {
    private func vectorTanh(_ x: [Double]) -> [Double] { AutoDiff.tanh(Tensor(x)).scalars }

    /// Every instruction set this CPU runs, portable first.
    private let instructionSets = KernelDispatch.InstructionSet.allCases.filter { $0.rawValue <= KernelDispatch.best.rawValue }

    /// The largest distance of `got` from `expected(x)` in units in the last place, and where.
    private func worstUlps(_ x: [Double], _ got: [Double], _ expected: (Double) -> Double) -> (Double, Double) {
        var worst = 0.0, worstAt = 0.0
        for (value, result) in zip(x, got) {
            let reference = expected(value)
            let ulps = reference == result ? 0 : abs(result - reference) / reference.ulp
            if ulps > worst { (worst, worstAt) = (ulps, value) }
        }
        return (worst, worstAt)
    }

    func testExpIsWithinTwoUlpOfLibmOnEveryInstructionSet() {
        var x = (0..<20001).map { i in -745 + 1455 * Double(i) / 20000 }
        x += (0..<2000).map { i in pow(10, -300 + 302 * Double(i) / 1999) }
        x += x.map { -$0 } + [0.1, 0.5, 0.75]
        for isa in instructionSets {
            let got = KernelDispatch.with(isa) { () -> [Double] in
                var out = [Double](repeating: 0, count: x.count)
                x.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { VectorMath.exp(src, $0.baseAddress!) } }
                return out
            }
            // Results below the smallest normal double carry fewer significant bits: compare above it.
            let (worst, worstAt) = worstUlps(x.filter { $0 > -708 }, zip(x, got).filter { $0.0 > -708 }.map(\.1), Foundation.exp)
            print("vector exp \(isa): worst \(worst) ulp at x = \(worstAt)")
            XCTAssertLessThanOrEqual(worst, 2, "\(isa) worst at x = \(worstAt)")
            let specialInputs: [Double] = [0, 709.9, -746, .nan, .infinity, -.infinity, 0x1p-1030]
            let special = KernelDispatch.with(isa) { () -> [Double] in
                var out = [Double](repeating: 0, count: specialInputs.count)
                specialInputs.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { VectorMath.exp(src, $0.baseAddress!) } }
                return out
            }
            XCTAssertEqual(special[0], 1)
            XCTAssertEqual(special[1], .infinity)
            XCTAssertEqual(special[2], 0)
            XCTAssertTrue(special[3].isNaN)
            XCTAssertEqual(special[4], .infinity)
            XCTAssertEqual(special[5], 0)
            XCTAssertEqual(special[6], 1)
        }
    }

    func testTanhIsWithinThreeUlpOfLibmOnEveryInstructionSet() {
        // Log-spaced magnitudes from 1e-300 to 30 with both signs, plus a dense linear grid near the
        // branch-free reduction's interesting points (|x| around ln 2 / 4 and 20), 7 values per lane group.
        var x = (0..<4000).map { i in pow(10, -300 + 301.5 * Double(i) / 3999) }
        x += (0..<4001).map { i in -3 + 6 * Double(i) / 4000 }
        x += (0..<401).map { i in 19.5 + Double(i) / 400 }
        x += x.map { -$0 }
        x.append(contentsOf: [0.1, 0.5, 0.75])  // a tail shorter than four lanes
        for isa in instructionSets {
            let (worst, worstAt) = worstUlps(x, KernelDispatch.with(isa) { vectorTanh(x) }, Foundation.tanh)
            print("vector tanh \(isa): worst \(worst) ulp at x = \(worstAt)")
            XCTAssertLessThanOrEqual(worst, 3, "\(isa) worst at x = \(worstAt)")
        }
    }

    func testTanhSpecialValues() {
        let got = vectorTanh([0, -0.0, .infinity, -.infinity, .nan, 1e-320, -1e-320, 25, -700])
        XCTAssertEqual(got[0], 0)
        XCTAssertEqual(got[1].sign, .minus)
        XCTAssertEqual(got[1], 0)
        XCTAssertEqual(got[2], 1)
        XCTAssertEqual(got[3], -1)
        XCTAssertTrue(got[4].isNaN)
        XCTAssertEqual(got[5], 1e-320)
        XCTAssertEqual(got[6], -1e-320)
        XCTAssertEqual(got[7], 1)
        XCTAssertEqual(got[8], -1)
    }

    /// `kernel` applied to `x` with the kernels switched to `isa`.
    private func run(_ isa: KernelDispatch.InstructionSet, _ x: [Double],
                     _ kernel: (UnsafeBufferPointer<Double>, UnsafeMutablePointer<Double>) -> Void) -> [Double] {
        KernelDispatch.with(isa) {
            var out = [Double](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { kernel(src, $0.baseAddress!) } }
            return out
        }
    }

    /// Both signs of log-spaced magnitudes 1e-300 … 700, a dense grid over [−40, 40], and a three-element
    /// tail (shorter than a vector).
    private var wideRange: [Double] {
        var x = (0..<4000).map { i in pow(10, -300 + 302.85 * Double(i) / 3999) }
        x += (0..<8001).map { i in -40 + 80 * Double(i) / 8000 }
        return x + x.map { -$0 } + [0.1, 0.5, 0.75]
    }

    func testSigmoidIsWithinTwoUlpOfLibmOnEveryInstructionSet() {
        let reference: (Double) -> Double = { z in z >= 0 ? 1 / (1 + Foundation.exp(-z)) : Foundation.exp(z) / (1 + Foundation.exp(z)) }
        // Below −708 the result is subnormal and carries fewer bits: compare above it.
        let x = wideRange.filter { $0 > -708 }
        for isa in instructionSets {
            let (worst, worstAt) = worstUlps(x, run(isa, x, VectorMath.sigmoid), reference)
            print("vector sigmoid \(isa): worst \(worst) ulp at x = \(worstAt)")
            XCTAssertLessThanOrEqual(worst, 2, "\(isa) worst at x = \(worstAt)")
            let special = run(isa, [0, -0.0, .infinity, -.infinity, .nan, 1e-320, -1e-320, 800, -800], VectorMath.sigmoid)
            XCTAssertEqual(Array(special[0...3]), [0.5, 0.5, 1, 0], "\(isa)")
            XCTAssertTrue(special[4].isNaN, "\(isa)")
            XCTAssertEqual(Array(special[5...8]), [0.5, 0.5, 1, 0], "\(isa)")
        }
    }

    func testSoftplusIsWithinTwoUlpOfLibmOnEveryInstructionSet() {
        let reference: (Double) -> Double = { z in Swift.max(z, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(z))) }
        let x = wideRange.filter { $0 > -708 }
        for isa in instructionSets {
            let (worst, worstAt) = worstUlps(x, run(isa, x, VectorMath.softplus), reference)
            print("vector softplus \(isa): worst \(worst) ulp at x = \(worstAt)")
            XCTAssertLessThanOrEqual(worst, 2, "\(isa) worst at x = \(worstAt)")
            let special = run(isa, [0, .infinity, -.infinity, .nan, 1e-320, 800, -800], VectorMath.softplus)
            XCTAssertEqual(special[0], Foundation.log(2), "\(isa)")
            XCTAssertEqual(special[1], .infinity, "\(isa)")
            XCTAssertEqual(special[2], 0, "\(isa)")
            XCTAssertTrue(special[3].isNaN, "\(isa)")
            XCTAssertEqual(special[4], Foundation.log(2), "\(isa)")
            XCTAssertEqual(special[5], 800, "\(isa)")
            XCTAssertEqual(special[6], 0, "\(isa)")
        }
    }

    /// The C loop calls libm's `log`: the same bits as `Foundation.log`, the special values included.
    func testLogEqualsLibmOnEveryInstructionSet() {
        let x = wideRange.filter { $0 > 0 } + [0, -0.0, -1, .infinity, -.infinity, .nan, 1e-320, .leastNonzeroMagnitude]
        for isa in instructionSets {
            let got = run(isa, x, VectorMath.log)
            for (value, result) in zip(x, got) {
                let expected = Foundation.log(value)
                XCTAssertTrue(result == expected || (result.isNaN && expected.isNaN), "\(isa) log(\(value)) = \(result)")
            }
        }
    }
}
