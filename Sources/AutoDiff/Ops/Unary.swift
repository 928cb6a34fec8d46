import Foundation

// Element-wise functions. Each rule is written with tensor ops so that it is differentiable again.

/// `eˣ` element-wise. Derivative `eˣ = y`.
public func exp(_ x: Tensor) -> Tensor { Exp()(x) }

/// The primitive behind `exp(_:)`: `y = eˣ`, `ẏ = y·ẋ`, `x̄ = y·ȳ`.
public struct Exp: ElementwiseVJP {
    public init() {}
    public var name: String { "exp" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: VectorMath.exp) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: VectorMath.exp) }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * y }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * y }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * y }
    public func swiftSource(_ x: String) -> String { "exp(\(x))" }
}

/// An element-wise function `y = φ(x)` whose JVP and VJP both multiply by `φ'(x)`: `ẏ = φ'(x) ẋ`,
/// `x̄ = φ'(x) ȳ`. Conform and give `derivative(x:y:)` (written with tensor ops) instead of both rules.
public protocol ElementwisePrimitive: UnaryPrimitive {
    /// `φ'(x)` element-wise, from the input `x` and the output `y`.
    func derivative(x: Tensor, y: Tensor) -> Tensor
}

extension ElementwisePrimitive {
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * derivative(x: x, y: y) }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * derivative(x: x, y: y) }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
}

/// Natural logarithm element-wise. Derivative `1/x`.
public func log(_ x: Tensor) -> Tensor { Log()(x) }

/// The primitive behind `log(_:)`: `ẏ = ẋ/x`, `x̄ = ȳ/x`.
public struct Log: ElementwiseVJP {
    public var name: String { "log" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: VectorMath.log) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: VectorMath.log) }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t / x }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g / x }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g / x }
    /// The rule reads `x` only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "log(\(x))" }
}

/// Square root element-wise. Derivative `1/(2√x) = 0.5/y`.
public func sqrt(_ x: Tensor) -> Tensor { Sqrt()(x) }

/// The primitive behind `sqrt(_:)`: `ẏ = 0.5 ẋ/y`, `x̄ = 0.5 ȳ/y`.
public struct Sqrt: ElementwiseVJP {
    public var name: String { "sqrt" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: Self.kernel) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: Self.kernel) }
    /// `y[i] = x.squareRoot()` over the elements of `x`.
    static func kernel(_ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        for i in x.indices { y[i] = x[i].squareRoot() }
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { 0.5 * t / y }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { 0.5 * g / y }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { 0.5 * g / y }
    public func swiftSource(_ x: String) -> String { "sqrt(\(x))" }
}

/// `xᵖ` element-wise for a constant exponent. Derivative `p·xᵖ⁻¹`.
public func pow(_ x: Tensor, _ p: Double) -> Tensor { PowConstant(exponent: p)(x) }

/// The primitive behind `pow(_:_:)` with a constant exponent p: `ẏ = p xᵖ⁻¹ ẋ`, `x̄ = p xᵖ⁻¹ ȳ`.
public struct PowConstant: ElementwisePrimitive, ElementwiseVJP {
    /// The exponent p.
    public var exponent: Double
    public var name: String { "pow" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: kernel) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: kernel) }
    /// `y[i] = x[i]ᵖ` over the elements of `x`.
    func kernel(_ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        for i in x.indices { y[i] = Foundation.pow(x[i], exponent) }
    }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { exponent * pow(x, exponent - 1) }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * (exponent * Foundation.pow(x, exponent - 1)) }
    /// The rule reads `x` only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "pow(\(x), \(exponent))" }
}

/// `aᵇ` element-wise with broadcasting, for `a > 0` wherever `b` is differentiated.
/// ∂/∂a = b·aᵇ⁻¹, ∂/∂b = aᵇ·log a.
public func pow(_ a: Tensor, _ b: Tensor) -> Tensor { Pow()(a, b) }

/// The primitive behind `pow(_:_:)` of two tensors: ∂/∂a = b·aᵇ⁻¹, ∂/∂b = y·log a.
public struct Pow: ElementwiseBinaryVJP {
    public var name: String { "pow" }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { broadcastShape(a, b, op: "pow") }
    /// Batching: broadcasting element-wise (`Batching.broadcasting`).
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Batching.broadcasting(self, inputs, isBatched: isBatched)
    }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor { Elementwise.zip(a, b, op: "pow") { Foundation.pow($0, $1) } }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t * b * pow(a, b - 1) }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t * y * log(a) }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { (g * b * pow(a, b - 1)).sum(toShape: a.shape) }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { (g * y * log(a)).sum(toShape: b.shape) }
    public func vjpA(element g: Double, a: Double, b: Double, y: Double) -> Double { g * b * Foundation.pow(a, b - 1) }
    public func vjpB(element g: Double, a: Double, b: Double, y: Double) -> Double { g * y * Foundation.log(a) }
    public func swiftSource(_ a: String, _ b: String) -> String { "pow(\(a), \(b))" }
}

/// Hyperbolic tangent element-wise. Derivative `1 − y²`.
public func tanh(_ x: Tensor) -> Tensor { Tanh()(x) }

/// The primitive behind `tanh(_:)`: `ẏ = (1 − y²) ẋ`, `x̄ = (1 − y²) ȳ`.
public struct Tanh: ElementwisePrimitive, ElementwiseVJP {
    public var name: String { "tanh" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: VectorMath.tanh) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: VectorMath.tanh) }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { 1 - y * y }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * (1 - y * y) }
    public func swiftSource(_ x: String) -> String { "tanh(\(x))" }
}

/// Logistic function `1/(1 + e⁻ˣ)` element-wise, evaluated without overflow. Derivative `y(1 − y)`.
public func sigmoid(_ x: Tensor) -> Tensor { Sigmoid()(x) }

/// The primitive behind `sigmoid(_:)`: `ẏ = y(1 − y) ẋ`, `x̄ = y(1 − y) ȳ`.
public struct Sigmoid: ElementwisePrimitive, ElementwiseVJP {
    public var name: String { "sigmoid" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: VectorMath.sigmoid) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: VectorMath.sigmoid) }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { y * (1 - y) }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * (y * (1 - y)) }
    public func swiftSource(_ x: String) -> String { "sigmoid(\(x))" }
}

/// `log(1 + eˣ)` element-wise, evaluated without overflow. Derivative `sigmoid(x)`.
public func softplus(_ x: Tensor) -> Tensor { Softplus()(x) }

/// The primitive behind `softplus(_:)`: `ẏ = sigmoid(x) ẋ`, `x̄ = sigmoid(x) ȳ`.
public struct Softplus: ElementwisePrimitive {
    public var name: String { "softplus" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: VectorMath.softplus) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: VectorMath.softplus) }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { sigmoid(x) }
    /// The tape's fast path: `sigmoid(x)` by the vector kernel into temporary memory (on the stack when
    /// small), then `g ← g · sigmoid(x)` in place: the rule's bits, without its two tensors. (An
    /// `ElementwiseVJP` formula would call libm's scalar `exp` per element instead of the vector kernel;
    /// on the P4 MLP gradient the two measured within noise of each other and of the tensor rule.)
    public func vjpInPlace(_ adjoint: inout Tensor, x: Tensor, y: Tensor) -> Bool {
        let n = adjoint.storage.count
        guard n > 0, x.shape == adjoint.shape, x.storage.count == n else { return false }
        withUnsafeTemporaryAllocation(of: Double.self, capacity: n) { slope in
            x.storage.withUnsafeBufferPointer { VectorMath.sigmoid($0, slope.baseAddress!) }
            adjoint.storage.withUnsafeMutableBufferPointer { g in
                for i in 0..<n { g[i] = g[i] * slope[i] }
            }
        }
        return true
    }
    /// The rule reads `x` only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "softplus(\(x))" }
}

/// `max(x, 0)` element-wise. Derivative: the step `1[x > 0]` (a constant, so second derivatives are 0).
public func relu(_ x: Tensor) -> Tensor { Relu()(x) }

/// The primitive behind `relu(_:)`: `ẏ = 1[x > 0] ẋ`, `x̄ = 1[x > 0] ȳ`.
public struct Relu: ElementwisePrimitive, ElementwiseVJP {
    public var name: String { "relu" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: Self.kernel) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: Self.kernel) }
    /// `y[i] = Swift.max(x, 0)` over the elements of `x`.
    static func kernel(_ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        for i in x.indices { y[i] = Swift.max(x[i], 0) }
    }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { step(x) }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * (x > 0 ? 1 : 0) }
    /// The rule reads `x` only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "relu(\(x))" }
}

/// Sine element-wise. Derivative `cos x`.
public func sin(_ x: Tensor) -> Tensor { Sin()(x) }

/// The primitive behind `sin(_:)`: `ẏ = cos(x) ẋ`, `x̄ = cos(x) ȳ`.
public struct Sin: ElementwisePrimitive, ElementwiseVJP {
    public var name: String { "sin" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: Self.kernel) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: Self.kernel) }
    /// `y[i] = Foundation.sin(x)` over the elements of `x`.
    static func kernel(_ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        for i in x.indices { y[i] = Foundation.sin(x[i]) }
    }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { cos(x) }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * Foundation.cos(x) }
    /// The rule reads `x` only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "sin(\(x))" }
}

/// Cosine element-wise. Derivative `−sin x`.
public func cos(_ x: Tensor) -> Tensor { Cos()(x) }

/// The primitive behind `cos(_:)`: `ẏ = −sin(x) ẋ`, `x̄ = −sin(x) ȳ`.
public struct Cos: ElementwisePrimitive, ElementwiseVJP {
    public var name: String { "cos" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: Self.kernel) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: Self.kernel) }
    /// `y[i] = Foundation.cos(x)` over the elements of `x`.
    static func kernel(_ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        for i in x.indices { y[i] = Foundation.cos(x[i]) }
    }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { -sin(x) }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * -Foundation.sin(x) }
    /// The rule reads `x` only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "cos(\(x))" }
}

/// Absolute value element-wise. Derivative `sign x` (0 at 0).
public func abs(_ x: Tensor) -> Tensor { Abs()(x) }

/// The primitive behind `abs(_:)`: `ẏ = sign(x) ẋ`, `x̄ = sign(x) ȳ`.
public struct Abs: ElementwisePrimitive, ElementwiseVJP {
    public var name: String { "abs" }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: Self.kernel) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: Self.kernel) }
    /// `y[i] = Swift.abs(x)` over the elements of `x`.
    static func kernel(_ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        for i in x.indices { y[i] = Swift.abs(x[i]) }
    }
    public func derivative(x: Tensor, y: Tensor) -> Tensor { sign(x) }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { g * Scalar.sign(x) }
    /// The rule reads `x` only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "abs(\(x))" }
}

/// Sign element-wise (−1, 0 or 1; `sign(0) = 0`). Piecewise constant: its derivative is zero
/// everywhere it exists, so the result is a constant that no level tracks.
public func sign(_ x: Tensor) -> Tensor { PiecewiseConstant.sign(x.detached) }

/// The constant step `1[x > 0]` (the derivative of `relu`), untracked by every level.
func step(_ x: Tensor) -> Tensor { PiecewiseConstant.step(x.detached) }

/// Element-wise functions that are constant between jumps, so their derivative is zero wherever it
/// exists: they are applied to detached inputs, and their rules (never run on a tracked input) are 0.
public enum PiecewiseConstant: ElementwiseVJP {
    /// −1, 0 or 1.
    case sign
    /// `1[x > 0]`.
    case step
    public var name: String { self == .sign ? "sign" : "step" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: kernel) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: kernel) }
    /// The function over the elements of `x` into `y`.
    func kernel(_ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        switch self {
        case .sign: for i in x.indices { y[i] = Scalar.sign(x[i]) }
        case .step: for i in x.indices { y[i] = x[i] > 0 ? 1 : 0 }
        }
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { y.constantZeros }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { x.constantZeros }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { 0 }
    /// The rule reads `x`'s shape only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "PiecewiseConstant.\(name)(\(x))" }
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
