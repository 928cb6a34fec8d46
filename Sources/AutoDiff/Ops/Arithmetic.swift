// Element-wise arithmetic with NumPy broadcasting (scalars, rows, extent-1 axes), and the broadcast /
// sum-to-shape pair that carries tangents and adjoints between broadcast shapes.

extension Tensor {
    /// `self` repeated to `shape` (NumPy broadcasting). JVP: broadcast the tangent; VJP: sum the adjoint
    /// back to `self.shape`.
    ///
    /// - Precondition: `self.shape` broadcasts to `shape`.
    public func broadcast(to shape: [Int]) -> Tensor {
        if self.shape == shape { return self }
        let target = require(try Shapes.broadcast(self.shape, shape, op: "broadcast(to:)"))
        engineCheck(
            target == shape,
            "\(AutoDiffError.shapeMismatch(op: "broadcast(to:)", lhs: self.shape, rhs: shape, reason: "the first does not broadcast to the second"))")
        return Broadcast(shape: shape)(self)
    }

    /// The sum of `self` over the axes along which `shape` broadcasts to `self.shape`: the adjoint of
    /// `broadcast(to:)`. JVP: sum the tangent; VJP: broadcast the adjoint back.
    ///
    /// - Precondition: `shape` broadcasts to `self.shape`.
    public func sum(toShape shape: [Int]) -> Tensor {
        if self.shape == shape { return self }
        engineCheck(
            (try? Shapes.broadcast(shape, self.shape)) == self.shape,
            "\(AutoDiffError.shapeMismatch(op: "sum(toShape:)", lhs: self.shape, rhs: shape, reason: "the second does not broadcast to the first"))")
        return SumToShape(shape: shape)(self)
    }

    /// Element-wise sum with broadcasting. ∂/∂a = ∂/∂b = 1.
    public static func + (a: Tensor, b: Tensor) -> Tensor { Add()(a, b) }

    /// Element-wise difference with broadcasting. ∂/∂a = 1, ∂/∂b = −1.
    public static func - (a: Tensor, b: Tensor) -> Tensor { Subtract()(a, b) }

    /// Element-wise product with broadcasting. ∂/∂a = b, ∂/∂b = a.
    public static func * (a: Tensor, b: Tensor) -> Tensor { Multiply()(a, b) }

    /// Element-wise quotient with broadcasting. ∂/∂a = 1/b, ∂/∂b = −a/b² = −y/b.
    public static func / (a: Tensor, b: Tensor) -> Tensor { Divide()(a, b) }

    /// Element-wise negation. ∂/∂x = −1.
    public static prefix func - (x: Tensor) -> Tensor { Negate()(x) }

    /// `a + b` with `b` a constant scalar.
    public static func + (a: Tensor, b: Double) -> Tensor { a + Tensor(b) }
    /// `a + b` with `a` a constant scalar.
    public static func + (a: Double, b: Tensor) -> Tensor { Tensor(a) + b }
    /// `a - b` with `b` a constant scalar.
    public static func - (a: Tensor, b: Double) -> Tensor { a - Tensor(b) }
    /// `a - b` with `a` a constant scalar.
    public static func - (a: Double, b: Tensor) -> Tensor { Tensor(a) - b }
    /// `a * b` with `b` a constant scalar.
    public static func * (a: Tensor, b: Double) -> Tensor { a * Tensor(b) }
    /// `a * b` with `a` a constant scalar.
    public static func * (a: Double, b: Tensor) -> Tensor { Tensor(a) * b }
    /// `a / b` with `b` a constant scalar.
    public static func / (a: Tensor, b: Double) -> Tensor { a / Tensor(b) }
    /// `a / b` with `a` a constant scalar.
    public static func / (a: Double, b: Tensor) -> Tensor { Tensor(a) / b }

    /// `a = a + b`.
    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    /// `a = a - b`.
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    /// `a = a * b`.
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
    /// `a = a / b`.
    public static func /= (a: inout Tensor, b: Tensor) { a = a / b }
}

/// The primitive behind `broadcast(to:)`: `y = x` repeated to `shape`; `ẏ = broadcast(ẋ)`,
/// `x̄ = sum(ȳ, toShape: x.shape)`.
public struct Broadcast: UnaryPrimitive {
    /// The target shape.
    public var shape: [Int]
    public var name: String { "broadcast" }
    /// Batching: `x` `[B] + s` padded to the target's rank after its batch axis, broadcast to `[B] + shape`.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Broadcast(shape: [batchSize] + shape)(Batching.padded(inputs[0], toRank: shape.count))
    }
    public func outputShape(_ x: [Int]) -> [Int] { shape }
    public func value(_ x: Tensor) -> Tensor { Elementwise.broadcast(x, to: shape) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.broadcast(buffers, fallback: evaluateThroughValue) }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t.broadcast(to: shape) }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g.sum(toShape: x.shape) }
    public func swiftSource(_ x: String) -> String { "\(x).broadcast(to: \(shape))" }
}

/// The primitive behind `sum(toShape:)`: `y` = the sum of `x` over the axes `shape` broadcasts along;
/// `ẏ = sum(ẋ)`, `x̄ = broadcast(ȳ, to: x.shape)`.
public struct SumToShape: UnaryPrimitive {
    /// The reduced shape.
    public var shape: [Int]
    public var name: String { "sumToShape" }
    /// Batching: summed to `[B]` + `shape` padded to the input's rank (the batch axis kept), then the
    /// padding dropped.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        let x = inputs[0], padding = [Int](repeating: 1, count: x.rank - 1 - shape.count)
        return SumToShape(shape: [batchSize] + padding + shape)(x).reshaped(to: [batchSize] + shape)
    }
    public func outputShape(_ x: [Int]) -> [Int] { shape }
    public func value(_ x: Tensor) -> Tensor { Elementwise.sumToShape(x, shape) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.sumToShape(buffers, fallback: evaluateThroughValue) }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t.sum(toShape: shape) }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g.broadcast(to: x.shape) }
    public func swiftSource(_ x: String) -> String { "\(x).sum(toShape: \(shape))" }
}

/// The shape of a broadcasting element-wise op's output.
func broadcastShape(_ a: [Int], _ b: [Int], op: String) -> [Int] {
    a == b ? a : require(try Shapes.broadcast(a, b, op: op))
}

/// The primitive behind `a + b`: `ẏ = ȧ + ḃ` (broadcast), `ā = sum(ȳ, toShape: a.shape)`, same for `b`.
public struct Add: BinaryPrimitive {
    public var name: String { "add" }
    /// Batching: broadcasting element-wise (`Batching.broadcasting`).
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Batching.broadcasting(self, inputs, isBatched: isBatched)
    }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { broadcastShape(a, b, op: "+") }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor { Elementwise.zip(a, b, op: "+", +) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.zip(.add, buffers) }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t.broadcast(to: y.shape) }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t.broadcast(to: y.shape) }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { g.sum(toShape: a.shape) }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { g.sum(toShape: b.shape) }
    /// The rules read the inputs' shapes only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ a: String, _ b: String) -> String { "\(a) + \(b)" }
}

/// The primitive behind `a - b`: ∂/∂a = 1, ∂/∂b = −1 (adjoints summed back to each shape).
public struct Subtract: ElementwiseBinaryVJP {
    public var name: String { "subtract" }
    /// Batching: broadcasting element-wise (`Batching.broadcasting`).
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Batching.broadcasting(self, inputs, isBatched: isBatched)
    }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { broadcastShape(a, b, op: "-") }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor { Elementwise.zip(a, b, op: "-", -) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.zip(.subtract, buffers) }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t.broadcast(to: y.shape) }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { -t.broadcast(to: y.shape) }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { g.sum(toShape: a.shape) }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { -g.sum(toShape: b.shape) }
    public func vjpA(element g: Double, a: Double, b: Double, y: Double) -> Double { g }
    public func vjpB(element g: Double, a: Double, b: Double, y: Double) -> Double { -g }
    /// The rules read the inputs' shapes only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ a: String, _ b: String) -> String { "\(a) - \(b)" }
}

/// The primitive behind `a * b`: ∂/∂a = b, ∂/∂b = a.
public struct Multiply: ElementwiseBinaryVJP {
    public var name: String { "multiply" }
    /// Batching: broadcasting element-wise (`Batching.broadcasting`).
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Batching.broadcasting(self, inputs, isBatched: isBatched)
    }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { broadcastShape(a, b, op: "*") }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor { Elementwise.zip(a, b, op: "*", *) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.zip(.multiply, buffers) }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t * b }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { a * t }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { (g * b).sum(toShape: a.shape) }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { (g * a).sum(toShape: b.shape) }
    public func vjpA(element g: Double, a: Double, b: Double, y: Double) -> Double { g * b }
    public func vjpB(element g: Double, a: Double, b: Double, y: Double) -> Double { g * a }
    /// The rules read the inputs' shapes and values only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ a: String, _ b: String) -> String { "\(a) * \(b)" }
}

/// The primitive behind `a / b`: ∂/∂a = 1/b, ∂/∂b = −a/b² = −y/b.
public struct Divide: ElementwiseBinaryVJP {
    public var name: String { "divide" }
    /// Batching: broadcasting element-wise (`Batching.broadcasting`).
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Batching.broadcasting(self, inputs, isBatched: isBatched)
    }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { broadcastShape(a, b, op: "/") }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor { Elementwise.zip(a, b, op: "/", /) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.zip(.divide, buffers) }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t / b }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { -(t * y / b) }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { (g / b).sum(toShape: a.shape) }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { (-(g * y / b)).sum(toShape: b.shape) }
    public func vjpA(element g: Double, a: Double, b: Double, y: Double) -> Double { g / b }
    public func vjpB(element g: Double, a: Double, b: Double, y: Double) -> Double { -(g * y / b) }
    public func swiftSource(_ a: String, _ b: String) -> String { "\(a) / \(b)" }
}

/// The primitive behind prefix `-x`: ∂/∂x = −1.
public struct Negate: ElementwiseVJP {
    public var name: String { "negate" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x, kernel: VectorMath.negate) }
    public func evaluate(_ buffers: PrimitiveBuffers) { Elementwise.map(buffers, kernel: VectorMath.negate) }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { -t }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { -g }
    public func vjp(element g: Double, x: Double, y: Double) -> Double { -g }
    /// The rule reads the adjoint only.
    public var vjpReadsOutput: Bool { false }
    public func swiftSource(_ x: String) -> String { "-\(x)" }
}
