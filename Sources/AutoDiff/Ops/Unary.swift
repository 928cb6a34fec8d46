import Foundation

// Element-wise functions. Each rule is written with tensor ops so that it is differentiable again.

/// `eˣ` element-wise. Derivative `eˣ = y`.
public func exp(_ x: Tensor) -> Tensor { Exp()(x) }

/// The primitive behind `exp(_:)`: `y = eˣ`, `ẏ = y·ẋ`, `x̄ = y·ȳ`.
public struct Exp: UnaryPrimitive {
    public init() {}
    public var name: String { "exp" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: VectorMath.exp) }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * y }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * y }
    public func swiftSource(_ x: String) -> String { "exp(\(x))" }
}

/// Natural logarithm element-wise. Derivative `1/x`.
public func log(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0) { Foundation.log($0) } },
        jvp: { t, x, _ in t / x }, vjp: { g, x, _ in g / x })
}

/// Square root element-wise. Derivative `1/(2√x) = 0.5/y`.
public func sqrt(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0) { $0.squareRoot() } },
        jvp: { t, _, y in 0.5 * t / y }, vjp: { g, _, y in 0.5 * g / y })
}

/// `xᵖ` element-wise for a constant exponent. Derivative `p·xᵖ⁻¹`.
public func pow(_ x: Tensor, _ p: Double) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0) { Foundation.pow($0, p) } },
        jvp: { t, x, _ in t * (p * pow(x, p - 1)) },
        vjp: { g, x, _ in g * (p * pow(x, p - 1)) })
}

/// `aᵇ` element-wise with broadcasting, for `a > 0` wherever `b` is differentiated.
/// ∂/∂a = b·aᵇ⁻¹, ∂/∂b = aᵇ·log a.
public func pow(_ a: Tensor, _ b: Tensor) -> Tensor {
    Application.binary(
        a, b,
        value: { Elementwise.zip($0, $1, op: "pow") { Foundation.pow($0, $1) } },
        jvpA: { t, a, b, _ in t * b * pow(a, b - 1) },
        jvpB: { t, a, _, y in t * y * log(a) },
        vjpA: { g, a, b, _ in (g * b * pow(a, b - 1)).sum(toShape: a.shape) },
        vjpB: { g, a, b, y in (g * y * log(a)).sum(toShape: b.shape) })
}

/// Hyperbolic tangent element-wise. Derivative `1 − y²`.
public func tanh(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0, kernel: VectorMath.tanh) },
        jvp: { t, _, y in t * (1 - y * y) }, vjp: { g, _, y in g * (1 - y * y) })
}

/// Logistic function `1/(1 + e⁻ˣ)` element-wise, evaluated without overflow. Derivative `y(1 − y)`.
public func sigmoid(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0, Scalar.sigmoid) },
        jvp: { t, _, y in t * (y * (1 - y)) }, vjp: { g, _, y in g * (y * (1 - y)) })
}

/// `log(1 + eˣ)` element-wise, evaluated without overflow. Derivative `sigmoid(x)`.
public func softplus(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0, Scalar.softplus) },
        jvp: { t, x, _ in t * sigmoid(x) }, vjp: { g, x, _ in g * sigmoid(x) })
}

/// `max(x, 0)` element-wise. Derivative: the step `1[x > 0]` (a constant, so second derivatives are 0).
public func relu(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0) { Swift.max($0, 0) } },
        jvp: { t, x, _ in t * x.step }, vjp: { g, x, _ in g * x.step })
}

/// Sine element-wise. Derivative `cos x`.
public func sin(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0) { Foundation.sin($0) } },
        jvp: { t, x, _ in t * cos(x) }, vjp: { g, x, _ in g * cos(x) })
}

/// Cosine element-wise. Derivative `−sin x`.
public func cos(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0) { Foundation.cos($0) } },
        jvp: { t, x, _ in -(t * sin(x)) }, vjp: { g, x, _ in -(g * sin(x)) })
}

/// Absolute value element-wise. Derivative `sign x` (0 at 0).
public func abs(_ x: Tensor) -> Tensor {
    Application.unary(
        x, value: { Elementwise.map($0) { Swift.abs($0) } },
        jvp: { t, x, _ in t * sign(x) }, vjp: { g, x, _ in g * sign(x) })
}

/// Sign element-wise (−1, 0 or 1; `sign(0) = 0`). Piecewise constant: its derivative is zero
/// everywhere it exists, so the result is a constant that no level tracks.
public func sign(_ x: Tensor) -> Tensor {
    Elementwise.map(x.detached, Scalar.sign)
}

extension Tensor {
    /// The constant `1[x > 0]`.
    var step: Tensor { Elementwise.map(detached) { $0 > 0 ? 1 : 0 } }
}

/// Scalar versions of the functions above, shared by the kernels.
enum Scalar {
    /// `1/(1 + e⁻ᶻ)` without overflow for large |z|.
    @inline(__always)
    static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + Foundation.exp(-z)) : { let e = Foundation.exp(z); return e / (1 + e) }()
    }

    /// `log(1 + eᶻ) = max(z, 0) + log1p(e^{−|z|})`.
    @inline(__always)
    static func softplus(_ z: Double) -> Double { Swift.max(z, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(z))) }

    /// −1, 0 or 1.
    @inline(__always)
    static func sign(_ z: Double) -> Double { z > 0 ? 1 : (z < 0 ? -1 : 0) }
}
