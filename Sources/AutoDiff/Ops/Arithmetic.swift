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
        return Application.unary(
            self,
            value: { Elementwise.broadcast($0, to: shape) },
            jvp: { t, _, _ in t.broadcast(to: shape) },
            vjp: { g, x, _ in g.sum(toShape: x.shape) })
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
        return Application.unary(
            self,
            value: { Elementwise.sumToShape($0, shape) },
            jvp: { t, _, _ in t.sum(toShape: shape) },
            vjp: { g, x, _ in g.broadcast(to: x.shape) })
    }

    /// Element-wise sum with broadcasting. ∂/∂a = ∂/∂b = 1.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        Application.binary(
            a, b,
            value: { Elementwise.zip($0, $1, op: "+", +) },
            jvpA: { t, _, _, y in t.broadcast(to: y.shape) },
            jvpB: { t, _, _, y in t.broadcast(to: y.shape) },
            vjpA: { g, a, _, _ in g.sum(toShape: a.shape) },
            vjpB: { g, _, b, _ in g.sum(toShape: b.shape) })
    }

    /// Element-wise difference with broadcasting. ∂/∂a = 1, ∂/∂b = −1.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        Application.binary(
            a, b,
            value: { Elementwise.zip($0, $1, op: "-", -) },
            jvpA: { t, _, _, y in t.broadcast(to: y.shape) },
            jvpB: { t, _, _, y in -t.broadcast(to: y.shape) },
            vjpA: { g, a, _, _ in g.sum(toShape: a.shape) },
            vjpB: { g, _, b, _ in -g.sum(toShape: b.shape) })
    }

    /// Element-wise product with broadcasting. ∂/∂a = b, ∂/∂b = a.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        Application.binary(
            a, b,
            value: { Elementwise.zip($0, $1, op: "*", *) },
            jvpA: { t, _, b, _ in t * b },
            jvpB: { t, a, _, _ in a * t },
            vjpA: { g, a, b, _ in (g * b).sum(toShape: a.shape) },
            vjpB: { g, a, b, _ in (g * a).sum(toShape: b.shape) })
    }

    /// Element-wise quotient with broadcasting. ∂/∂a = 1/b, ∂/∂b = −a/b² = −y/b.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        Application.binary(
            a, b,
            value: { Elementwise.zip($0, $1, op: "/", /) },
            jvpA: { t, _, b, _ in t / b },
            jvpB: { t, _, b, y in -(t * y / b) },
            vjpA: { g, a, b, _ in (g / b).sum(toShape: a.shape) },
            vjpB: { g, _, b, y in (-(g * y / b)).sum(toShape: b.shape) })
    }

    /// Element-wise negation. ∂/∂x = −1.
    public static prefix func - (x: Tensor) -> Tensor {
        Application.unary(
            x,
            value: { Elementwise.map($0) { -$0 } },
            jvp: { t, _, _ in -t },
            vjp: { g, _, _ in -g })
    }

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
