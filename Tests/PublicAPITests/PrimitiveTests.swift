import Foundation
import XCTest
import AutoDiff

// The worked example of Docs/guide.md, "Defining a primitive": a user-defined op outside the engine.

/// y = x³ element-wise: ẏ = 3x²·ẋ, x̄ = 3x²·ȳ.
struct Cube: UnaryPrimitive {
    var name: String { "cube" }
    func value(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, scalars: x.scalars.map { $0 * $0 * $0 })
    }
    func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * (3 * x * x) }
    func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * (3 * x * x) }
    func swiftSource(_ x: String) -> String { "cube(\(x))" }
}

func cube(_ x: Tensor) -> Tensor { Cube()(x) }

/// The same op with a wrong VJP (2x² instead of 3x²): gradcheck must reject it.
struct WrongCube: UnaryPrimitive {
    var name: String { "wrongCube" }
    func value(_ x: Tensor) -> Tensor { Cube().value(x) }
    func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * (3 * x * x) }
    func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * (2 * x * x) }
    func swiftSource(_ x: String) -> String { "wrongCube(\(x))" }
}

// Docs/guide.md, "The tape's first-order fast path: `ElementwiseVJP`".

/// y = x³ with the tape's first-order fast path: x̄ᵢ = ȳᵢ·3xᵢ², computed in place.
struct FastCube: ElementwiseVJP {
    var name: String { "fastCube" }
    func value(_ x: Tensor) -> Tensor { Cube().value(x) }
    func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * (3 * x * x) }
    func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * (3 * x * x) }
    func vjp(element g: Double, x: Double, y: Double) -> Double { g * (3 * x * x) }
    func swiftSource(_ x: String) -> String { "fastCube(\(x))" }
}

final class PrimitiveTests: XCTestCase {
    /// The fast path equals the tensor rule bit for bit (same operations, same order), the tape's
    /// gradient equals the plain op's, and the second order (tensor rules) still passes gradcheck.
    func testElementwiseVJPFastPathEqualsTheRule() {
        let x = Tensor([0.5, -1.2, 2.0]), g = Tensor([0.3, -2.0, 1.25])
        var inPlace = g
        XCTAssertTrue(FastCube().vjpInPlace(&inPlace, x: x, y: FastCube().value(x)))
        XCTAssertEqual(inPlace.scalars, FastCube().vjp(g, x: x, y: FastCube().value(x)).scalars)
        XCTAssertTrue(inPlace.isApproximatelyEqual(to: Tensor([0.225, -8.64, 15]), tolerance: 1e-15))
        XCTAssertEqual(gradient(at: x) { FastCube()($0).sum() }.scalars, gradient(at: x) { cube($0).sum() }.scalars)
        XCTAssertTrue(gradcheck(at: x) { x in gradient(at: x) { FastCube()($0).sum() } }.passes())
    }

    func testUserPrimitivePassesGradcheckAtBothOrders() {
        let x = Tensor([0.5, -1.2, 2.0])
        let first = gradcheck(at: x) { cube($0) }
        let second = gradcheck(at: x) { x in gradient(at: x) { cube($0).sum() } }
        print(first.passes(), second.passes())   // true true
        XCTAssertTrue(first.passes(), "\(first)")
        XCTAssertTrue(second.passes(), "\(second)")
        XCTAssertTrue(gradient(at: x) { cube($0).sum() }.isApproximatelyEqual(to: Tensor([0.75, 4.32, 12]), tolerance: 1e-15))
        XCTAssertFalse(gradcheck(at: x) { WrongCube()($0) }.passes())
    }

    /// A user primitive stages like the engine's own: its rules are recorded into derivative programs.
    func testUserPrimitiveStages() {
        let x = Tensor([0.5, -1.2, 2.0]), v = Tensor([1, 0.5, -1])
        let program = stage(shape: [3]) { cube($0).sum() }
        XCTAssertEqual(program.description.contains("cube(%0)"), true, program.description)
        XCTAssertTrue(program.gradient().outputs(at: [x])[0].isApproximatelyEqual(to: 3 * x * x, tolerance: 1e-15))
        let staged = program.hvp(mode: .forwardOverReverse).outputs(at: [x, v])[0]
        XCTAssertTrue(staged.isApproximatelyEqual(to: 6 * x * v, tolerance: 1e-14), "\(staged)")
    }
}
