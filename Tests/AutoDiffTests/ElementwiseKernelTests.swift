import CKernels
import Foundation
import XCTest
@testable import AutoDiff

/// The C element-wise arithmetic and negation against the plain Swift operators, bit for bit, on every
/// instruction set and every broadcast form `Elementwise.zip` routes to them; and the parsing of
/// HYPERGRADIENT_KERNELS.
final class ElementwiseKernelTests: XCTestCase {
    private let instructionSets = KernelDispatch.InstructionSet.allCases.filter { $0.rawValue <= KernelDispatch.best.rawValue }

    /// `f` applied the Swift way: `a` and `b` broadcast explicitly, then a scalar loop.
    private func reference(_ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double) -> Tensor {
        let shape = try! Shapes.broadcast(a.shape, b.shape, op: "reference")
        let ea = Elementwise.broadcast(a, to: shape), eb = Elementwise.broadcast(b, to: shape)
        return Tensor(shape: shape, scalars: zip(ea.scalars, eb.scalars).map { f($0, $1) })
    }

    func testArithmeticEqualsTheSwiftOperatorsOnEveryBroadcastForm() {
        func tensor(_ shape: [Int], _ seed: Double) -> Tensor {
            Tensor(shape: shape) { Foundation.sin(seed * Double($0 + 1)) * 3 + (($0 % 5 == 0) ? 0 : 0.25) }
        }
        // Same shape (with a tail shorter than a vector), scalar either side, rows either side, a row of
        // the other operand's leading-1 shape, two rows, and a column (broadcast explicitly).
        let pairs: [([Int], [Int])] = [([7, 5], [7, 5]), ([7, 5], []), ([1], [4, 9]), ([6, 4], [4]), ([3], [5, 3]),
                                       ([1, 4], [6, 4]), ([2, 1, 3], [4, 3]), ([5, 1], [5, 6]), ([13], [13])]
        let operators: [(String, (Tensor, Tensor) -> Tensor, (Double, Double) -> Double)] =
            [("+", { $0 + $1 }, { $0 + $1 }), ("-", { $0 - $1 }, { $0 - $1 }), ("*", { $0 * $1 }, { $0 * $1 }), ("/", { $0 / $1 }, { $0 / $1 })]
        for isa in instructionSets {
            for (left, right) in pairs {
                let a = tensor(left, 0.7), b = tensor(right, 1.3)
                for (name, tensorOp, scalarOp) in operators {
                    let got = KernelDispatch.with(isa) { tensorOp(a, b) }
                    let expected = reference(a, b, scalarOp)
                    XCTAssertEqual(got.shape, expected.shape, "\(isa) \(left) \(name) \(right)")
                    // Division by the zeros planted in b gives ±inf/NaN in both: compare bit patterns.
                    XCTAssertEqual(got.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(isa) \(left) \(name) \(right)")
                }
            }
            let x = Tensor([0, -0.0, 1.5, -.infinity, .nan, 1e-320, 3, 4, 5])
            let negated = KernelDispatch.with(isa) { (-x).scalars }
            XCTAssertEqual(negated.map(\.bitPattern), x.scalars.map { (-$0).bitPattern }, "\(isa)")
        }
    }

    func testEnvironmentVariableChoosesTheInstructionSet() {
        let avx512 = Int32(CKernelsAVX512), avx2 = Int32(CKernelsAVX2), portable = Int32(CKernelsPortable)
        XCTAssertEqual(ckernels_isa_for_request(nil, avx512), avx512)
        XCTAssertEqual(ckernels_isa_for_request("portable", avx512), portable)
        XCTAssertEqual(ckernels_isa_for_request("portable", avx2), portable)
        XCTAssertEqual(ckernels_isa_for_request("avx2", avx512), avx2)
        XCTAssertEqual(ckernels_isa_for_request("avx2", avx2), avx2)
        XCTAssertEqual(ckernels_isa_for_request("avx2", portable), portable, "never above what the CPU runs")
        XCTAssertEqual(ckernels_isa_for_request("AVX-9000", avx2), avx2, "an unknown name keeps the best")
        XCTAssertEqual(ckernels_isa_for_request("", avx512), avx512)
    }
}
