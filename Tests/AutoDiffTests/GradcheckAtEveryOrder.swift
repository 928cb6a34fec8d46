import XCTest
@testable import AutoDiff

/// The three gradcheck passes every op goes through (relative error ≤ 1e-6): the first-order
/// derivatives; `x ↦ ∇ₓ⟨w, f(x)⟩`, which runs every VJP rule as ops (its Jacobian is the Hessian of
/// ⟨w, f⟩); and `x ↦ f'(x)·v`, which runs every JVP rule as ops. Shared by the op test classes.
enum GradcheckAtEveryOrder {
    /// A named one-input case.
    typealias Unary = (name: String, x: Tensor, f: @Sendable (Tensor) -> Tensor)
    /// A named two-input case.
    typealias Binary = (name: String, x: Tensor, y: Tensor, f: @Sendable (Tensor, Tensor) -> Tensor)

    static func check(_ name: String, _ report: GradcheckResult, _ order: String, file: StaticString, line: UInt) {
        XCTAssertTrue(report.passes(tolerance: 1e-6), "\(name) (\(order)): \(report)", file: file, line: line)
    }

    /// First-order gradcheck of every case.
    static func firstOrder(_ unary: [Unary], _ binary: [Binary], file: StaticString = #filePath, line: UInt = #line) {
        for c in unary { check(c.name, gradcheck(at: c.x, of: c.f), "first order", file: file, line: line) }
        for c in binary { check(c.name, gradcheck(at: c.x, c.y, of: c.f), "first order", file: file, line: line) }
    }

    /// Gradcheck of `x ↦ ∇ₓ⟨w, f(x)⟩` with deterministic weights `w` of the output's shape.
    static func vjpRules(_ unary: [Unary], _ binary: [Binary], file: StaticString = #filePath, line: UInt = #line) {
        for c in unary {
            let w = OpGradcheckTests.weights(like: c.f(c.x))
            check(c.name, gradcheck(at: c.x) { x in gradient(at: x) { x in (c.f(x) * w).sum() } }, "VJP of VJP", file: file, line: line)
        }
        for c in binary {
            let w = OpGradcheckTests.weights(like: c.f(c.x, c.y))
            check(c.name, gradcheck(at: c.x, c.y) { x, y in
                let (gx, gy) = gradient(at: x, y) { x, y in (c.f(x, y) * w).sum() }
                return concatenate([gx.reshaped(to: [gx.count]), gy.reshaped(to: [gy.count])])
            }, "VJP of VJP", file: file, line: line)
        }
    }

    /// Gradcheck of `x ↦ f'(x)·v` with deterministic directions `v`.
    static func jvpRules(_ unary: [Unary], _ binary: [Binary], file: StaticString = #filePath, line: UInt = #line) {
        for c in unary {
            let v = OpGradcheckTests.input(c.x.shape, offset: 5)
            check(c.name, gradcheck(at: c.x) { x in jvp(at: x, direction: v, of: c.f).tangent }, "JVP", file: file, line: line)
        }
        for c in binary {
            let vx = OpGradcheckTests.input(c.x.shape, offset: 5), vy = OpGradcheckTests.input(c.y.shape, offset: 6)
            check(c.name, gradcheck(at: c.x, c.y) { x, y in jvp(at: x, y, directions: (vx, vy), of: c.f).tangent }, "JVP", file: file, line: line)
        }
    }
}
