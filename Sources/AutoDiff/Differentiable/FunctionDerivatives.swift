import _Differentiation

// Compiler-AD registrations (reverse mode) of the free-function ops, through the engine's tape.

@usableFromInline @derivative(of: exp)
func _vjpExp(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { exp($0) } }

@usableFromInline @derivative(of: log)
func _vjpLog(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { log($0) } }

@usableFromInline @derivative(of: sqrt)
func _vjpSqrt(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { sqrt($0) } }

@usableFromInline @derivative(of: tanh)
func _vjpTanh(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { tanh($0) } }

@usableFromInline @derivative(of: sigmoid)
func _vjpSigmoid(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { sigmoid($0) } }

@usableFromInline @derivative(of: softplus)
func _vjpSoftplus(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { softplus($0) } }

@usableFromInline @derivative(of: relu)
func _vjpRelu(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { relu($0) } }

@usableFromInline @derivative(of: sin)
func _vjpSin(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { sin($0) } }

@usableFromInline @derivative(of: cos)
func _vjpCos(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { cos($0) } }

@usableFromInline @derivative(of: abs)
func _vjpAbs(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { abs($0) } }

@usableFromInline @derivative(of: sign)
func _vjpSign(_ x: Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { sign($0) } }

@usableFromInline @derivative(of: pow, wrt: x)
func _vjpPowDouble(_ x: Tensor, _ p: Double) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { pow($0, p) } }

@usableFromInline @derivative(of: pow)
func _vjpPow(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { pow($0, $1) } }

@usableFromInline @derivative(of: matmul(_:_:))
func _vjpMatmul(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { matmul($0, $1) } }

@usableFromInline @derivative(of: matmul(_:_:transposeA:transposeB:), wrt: (a, b))
func _vjpMatmulTransposed(
    _ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool
) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) {
    taped(a, b) { matmul($0, $1, transposeA: transposeA, transposeB: transposeB) }
}

@usableFromInline @derivative(of: dot)
func _vjpDot(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { dot($0, $1) } }

@usableFromInline @derivative(of: maximum)
func _vjpMaximum(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { maximum($0, $1) } }

@usableFromInline @derivative(of: minimum)
func _vjpMinimum(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { minimum($0, $1) } }

@usableFromInline @derivative(of: softmax, wrt: x)
func _vjpSoftmax(_ x: Tensor, alongAxis axis: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { softmax($0, alongAxis: axis) } }

@usableFromInline @derivative(of: logSoftmax, wrt: x)
func _vjpLogSoftmax(_ x: Tensor, alongAxis axis: Int) -> (value: Tensor, pullback: (Tensor) -> Tensor) { taped(x) { logSoftmax($0, alongAxis: axis) } }

@usableFromInline @derivative(of: logisticLoss, wrt: (logits, labels))
func _vjpLogisticLoss(logits: Tensor, labels: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) {
    taped(logits, labels) { logisticLoss(logits: $0, labels: $1) }
}

@usableFromInline @derivative(of: crossEntropy(logits:labels:), wrt: (logits, labels))
func _vjpCrossEntropy(logits: Tensor, labels: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) {
    taped(logits, labels) { crossEntropy(logits: $0, labels: $1) }
}

@usableFromInline @derivative(of: solve)
func _vjpSolve(_ a: Tensor, _ b: Tensor) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) { taped(a, b) { solve($0, $1) } }

@usableFromInline @derivative(of: concatenate, wrt: tensors)
func _vjpConcatenate(
    _ tensors: [Tensor], alongAxis axis: Int
) -> (value: Tensor, pullback: (Tensor) -> Array<Tensor>.TangentVector) {
    let (value, pullback) = valueWithPullback(at: tensors) { concatenate($0, alongAxis: axis) }
    return (value, { Array<Tensor>.TangentVector(pullback(conformed($0, to: value.shape))) })
}
