import _Differentiation

// Compiler-AD registrations (reverse mode) of the arithmetic operators, reductions and layout ops.
// Every pullback is the engine's own VJP rule, taken from a one-op tape (see `taped`), so the compiler
// never differentiates an element loop and each rule lives in one place.

extension Tensor {
    @usableFromInline @derivative(of: +)
    static func _vjpAdd(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { $0 + $1 } }

    @usableFromInline @derivative(of: -)
    static func _vjpSubtract(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { $0 - $1 } }

    @usableFromInline @derivative(of: *)
    static func _vjpMultiply(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { $0 * $1 } }

    @usableFromInline @derivative(of: /)
    static func _vjpDivide(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { $0 / $1 } }

    @usableFromInline @derivative(of: -)
    static func _vjpNegate(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { -$0 } }

    @usableFromInline @derivative(of: +)
    static func _vjpAddDouble(_ a: Tensor, _ b: Double) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Double)) { tapedScalarRight(a, b) { $0 + $1 } }

    @usableFromInline @derivative(of: +)
    static func _vjpDoubleAdd(_ a: Double, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Double, Tensor)) { tapedScalarLeft(a, b) { $0 + $1 } }

    @usableFromInline @derivative(of: -)
    static func _vjpSubtractDouble(_ a: Tensor, _ b: Double) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Double)) { tapedScalarRight(a, b) { $0 - $1 } }

    @usableFromInline @derivative(of: -)
    static func _vjpDoubleSubtract(_ a: Double, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Double, Tensor)) { tapedScalarLeft(a, b) { $0 - $1 } }

    @usableFromInline @derivative(of: *)
    static func _vjpMultiplyDouble(_ a: Tensor, _ b: Double) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Double)) { tapedScalarRight(a, b) { $0 * $1 } }

    @usableFromInline @derivative(of: *)
    static func _vjpDoubleMultiply(_ a: Double, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Double, Tensor)) { tapedScalarLeft(a, b) { $0 * $1 } }

    @usableFromInline @derivative(of: /)
    static func _vjpDivideDouble(_ a: Tensor, _ b: Double) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Double)) { tapedScalarRight(a, b) { $0 / $1 } }

    @usableFromInline @derivative(of: /)
    static func _vjpDoubleDivide(_ a: Double, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Double, Tensor)) { tapedScalarLeft(a, b) { $0 / $1 } }

    @usableFromInline @derivative(of: sum())
    func _vjpSum() -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.sum() } }

    @usableFromInline @derivative(of: mean())
    func _vjpMean() -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.mean() } }

    @usableFromInline @derivative(of: sum(alongAxis:), wrt: self)
    func _vjpSumAlongAxis(alongAxis axis: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.sum(alongAxis: axis) } }

    @usableFromInline @derivative(of: mean(alongAxis:), wrt: self)
    func _vjpMeanAlongAxis(alongAxis axis: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.mean(alongAxis: axis) } }

    @usableFromInline @derivative(of: sum(toShape:), wrt: self)
    func _vjpSumToShape(toShape shape: [Int]) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.sum(toShape: shape) } }

    @usableFromInline @derivative(of: broadcast(to:), wrt: self)
    func _vjpBroadcast(to shape: [Int]) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.broadcast(to: shape) } }

    @usableFromInline @derivative(of: logSumExp())
    func _vjpLogSumExp() -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.logSumExp() } }

    @usableFromInline @derivative(of: logSumExp(alongAxis:), wrt: self)
    func _vjpLogSumExpAlongAxis(alongAxis axis: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.logSumExp(alongAxis: axis) } }

    @usableFromInline @derivative(of: squaredNorm)
    func _vjpSquaredNorm() -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.squaredNorm() } }

    @usableFromInline @derivative(of: transposed)
    func _vjpTransposed() -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.transposed } }

    @usableFromInline @derivative(of: reshaped(to:), wrt: self)
    func _vjpReshaped(to shape: [Int]) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.reshaped(to: shape) } }

    @usableFromInline @derivative(of: expandingShape(at:), wrt: self)
    func _vjpExpandingShape(at axis: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.expandingShape(at: axis) } }

    @usableFromInline @derivative(of: slice(alongAxis:_:), wrt: self)
    func _vjpSlice(alongAxis axis: Int, _ range: Range<Int>) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0.slice(alongAxis: axis, range) } }

    @usableFromInline @derivative(of: embedded(in:alongAxis:at:), wrt: self)
    func _vjpEmbedded(in shape: [Int], alongAxis axis: Int, at start: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) {
        taped(self) { $0.embedded(in: shape, alongAxis: axis, at: start) }
    }

    @usableFromInline @derivative(of: subscript(_:), wrt: self)
    func _vjpIndex(_ index: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0[index] } }

    @usableFromInline @derivative(of: subscript(_:), wrt: self)
    func _vjpRange(_ range: Range<Int>) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(self) { $0[range] } }
}

/// `taped` for an op of a tensor and a `Double` (the `Double` differentiable too).
@inline(__always)
func tapedScalarRight(
    _ a: Tensor, _ b: Double, _ op: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Double)) {
    let (value, pullback) = taped(a, Tensor(b), op)
    return (value, { g in let (ga, gb) = pullback(g); return (ga, gb.scalar) })
}

/// `taped` for an op of a `Double` and a tensor.
@inline(__always)
func tapedScalarLeft(
    _ a: Double, _ b: Tensor, _ op: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, pullback: (Tensor) -> (Double, Tensor)) {
    let (value, pullback) = taped(Tensor(a), b, op)
    return (value, { g in let (ga, gb) = pullback(g); return (ga.scalar, gb) })
}
