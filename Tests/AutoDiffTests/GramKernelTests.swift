import CKernels
import Foundation
import XCTest
@testable import AutoDiff

/// `ckernels_gram_rows` (the symmetric `AᵀA` with the mirror written per tile) on every instruction set
/// this CPU runs: each entry has the bits of the full `ckernels_gemm` product, whatever the split of the
/// rows into calls, and a call writes only its rows' upper entries and their mirror images.
final class GramKernelTests: XCTestCase {
    private var instructionSets: [KernelDispatch.InstructionSet] {
        KernelDispatch.InstructionSet.allCases.filter { $0.rawValue <= KernelDispatch.best.rawValue }
    }

    private func matrix(rows: Int, columns: Int) -> [Double] {
        (0..<(rows * columns)).map { Foundation.sin(0.013 * Double($0 * $0 % 997) + 0.2) }
    }

    /// `AᵀA` by the general product (`a` stored `rows × columns`).
    private func gemmGram(_ a: [Double], rows: Int, columns: Int) -> [Double] {
        var c = [Double](repeating: .nan, count: columns * columns)
        ckernels_gemm(true, false, columns, columns, rows, 1, a, columns, a, columns, 0, &c, columns)
        return c
    }

    /// `AᵀA` by `ckernels_gram_rows` over the row ranges cut at `boundaries`, into a NaN-filled buffer.
    private func gramRows(_ a: [Double], rows: Int, columns: Int, boundaries: [Int]) -> [Double] {
        var c = [Double](repeating: .nan, count: columns * columns)
        for (start, end) in zip(boundaries, boundaries.dropFirst()) {
            ckernels_gram_rows(columns, rows, a, columns, start, end - start, &c, columns)
        }
        return c
    }

    /// Edge tiles, tiles crossing the diagonal, several depth blocks (k > 256), splits on and off the
    /// tile grid: the same bits as the full GEMM (which computes both triangles independently).
    func testEveryEntryHasTheBitsOfTheFullProduct() {
        for isa in instructionSets {
            KernelDispatch.with(isa) {
                for (rows, columns) in [(1, 1), (9, 7), (40, 13), (300, 37), (530, 101)] {
                    let a = matrix(rows: rows, columns: columns), expected = gemmGram(a, rows: rows, columns: columns)
                    let splits = [[0, columns], [0, columns / 3, columns], [0, 1, columns / 2 + 1, columns - 1, columns]]
                    for boundaries in splits where zip(boundaries, boundaries.dropFirst()).allSatisfy({ $0 < $1 }) {
                        let c = gramRows(a, rows: rows, columns: columns, boundaries: boundaries)
                        XCTAssertEqual(c, expected, "\(isa) \(rows)x\(columns) split \(boundaries)")
                    }
                }
            }
        }
    }

    /// One call on rows `r0 ..< r1` writes exactly the entries (i, j) with `i` or `j` in the range and
    /// the other index at least as large: the rest stays untouched (NaN), so calls may run at once.
    func testOneCallWritesOnlyItsRowsAndTheirMirror() {
        let (rows, columns, r0, r1) = (50, 29, 7, 19)
        let a = matrix(rows: rows, columns: columns)
        for isa in instructionSets {
            KernelDispatch.with(isa) {
                let expected = gemmGram(a, rows: rows, columns: columns)
                let c = gramRows(a, rows: rows, columns: columns, boundaries: [r0, r1])
                for i in 0..<columns {
                    for j in 0..<columns {
                        let owned = (r0..<r1).contains(min(i, j))
                        let value = c[i * columns + j]
                        if owned {
                            XCTAssertEqual(value, expected[i * columns + j], "\(isa) (\(i), \(j))")
                        } else {
                            XCTAssertTrue(value.isNaN, "\(isa) (\(i), \(j)) written outside rows \(r0)..<\(r1)")
                        }
                    }
                }
            }
        }
    }
}
