import Foundation
import XCTest
@testable import Bilevel

/// MORBiT on a robust three-task problem with a known minimax answer.
final class MORBiTTests: XCTestCase {
    /// Task i: lower `½ Σⱼ aᵢ (φⱼ − θⱼ)²` (φ*ᵢ(θ) = θ, curvature aᵢ), upper `½ ‖φ − cᵢ‖²`, so the
    /// hyperobjectives are `Fᵢ(θ) = ½ ‖θ − cᵢ‖²`. With c = (0, 0), (4, 0), (1, 1) (an obtuse triangle)
    /// `min_θ maxᵢ Fᵢ` is the midpoint (2, 0) of the long side, worst value 2, weights (½, ½, 0); averaging
    /// gives the centroid (5/3, 1/3) with worst value 25/9.
    static let centres: [[Double]] = [[0, 0], [4, 0], [1, 1]]
    static let curvatures = [1.0, 2.0, 0.5]

    static var tasks: [BilevelProblem] {
        zip(centres, curvatures).map { centre, a in
            BilevelProblem(
                upper: { _, phi in 0.5 * (phi - Tensor(centre)).squaredNorm() },
                lower: { theta, phi in 0.5 * a * (phi - theta).squaredNorm() })
        }
    }

    /// MORBiT reaches the minimax point (2, 0) and weights (½, ½, 0); with γ = 0 (averaging) the same loop
    /// stops at the centroid, whose worst task is 39% worse.
    func testMORBiTFindsTheMinimaxPointAndBeatsAveraging() throws {
        let x0 = Tensor([1.0, 2.0]), y0s = Array(repeating: Tensor(zeros: [2]), count: 3)
        let robust = try MORBiT(solver: ExactSolve(), upperStep: 0.2, lowerStep: 0.5, weightStep: 0.05)
            .minimize(tasks: Self.tasks, from: x0, y0s: y0s, steps: 600)
        let averaged = try MORBiT(solver: ExactSolve(), upperStep: 0.2, lowerStep: 0.5, weightStep: 0)
            .minimize(tasks: Self.tasks, from: x0, y0s: y0s, steps: 600)
        func worst(_ x: Tensor) -> Double { Self.centres.map { 0.5 * (x - Tensor($0)).squaredNorm().scalar }.max()! }
        print("MORBiT: θ = \(robust.x.scalars), λ = \(robust.weights), worst F = \(worst(robust.x)); averaging: θ = \(averaged.x.scalars), worst F = \(worst(averaged.x))")
        XCTAssertLessThan((robust.x - Tensor([2.0, 0])).squaredNorm().scalar.squareRoot(), 0.02)
        XCTAssertEqual(worst(robust.x), 2, accuracy: 0.02)
        XCTAssertEqual(robust.weights[0], 0.5, accuracy: 0.02)
        XCTAssertEqual(robust.weights[2], 0, accuracy: 1e-9)
        XCTAssertLessThan((averaged.x - Tensor([5.0 / 3, 1.0 / 3])).squaredNorm().scalar.squareRoot(), 1e-6)
        XCTAssertEqual(worst(averaged.x), 25.0 / 9, accuracy: 1e-6)
    }

    /// Projection onto the simplex: an interior shift, a clipped coordinate, and a point already on it.
    func testSimplexProjection() {
        for (got, want) in zip(projectOntoSimplex([0.5, 0.5, 0.7]), [0.8 / 3, 0.8 / 3, 1.4 / 3]) { XCTAssertEqual(got, want, accuracy: 1e-15) }
        XCTAssertEqual(projectOntoSimplex([2, 0, -1]), [1, 0, 0])
        XCTAssertEqual(projectOntoSimplex([0.2, 0.3, 0.5]), [0.2, 0.3, 0.5])
    }

    /// Mismatched counts and weights off the simplex throw errors saying so.
    func testValidation() {
        let method = MORBiT(solver: ExactSolve(), upperStep: 0.2, lowerStep: 0.5, weightStep: 0.05), x0 = Tensor([1.0, 2.0])
        XCTAssertThrowsError(try method.minimize(tasks: Self.tasks, from: x0, y0s: [Tensor(zeros: [2])], steps: 3)) {
            XCTAssertTrue("\($0)".contains("1 initial lower variables for 3 tasks"), "\($0)")
        }
        XCTAssertThrowsError(try method.minimize(tasks: Self.tasks, from: x0, y0s: Array(repeating: Tensor(zeros: [2]), count: 3), weights: [0.5, 0.6, 0], steps: 3)) {
            XCTAssertTrue("\($0)".contains("simplex"), "\($0)")
        }
    }
}
