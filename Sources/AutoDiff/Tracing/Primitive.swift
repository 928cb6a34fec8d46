/// A differentiable primitive operation: the one place where an op is defined.
///
/// A primitive carries, together, everything the engine needs to run, differentiate, stage and print
/// the op:
/// - `name`: how it appears in programs, diagnostics and emitted source;
/// - `outputShape(_:)`: the output shape from the input shapes (what staging needs, since a staged
///   input has a shape but no values); it stops with an `AutoDiffError` message naming the shapes when
///   they are incompatible;
/// - `value(_:)`: the raw kernel on constant inputs;
/// - `jvp(_:input:inputs:output:)`: the output tangent contributed by input `i`'s tangent,
///   `∂y/∂xᵢ · ẋᵢ`;
/// - `vjp(_:input:inputs:output:)`: the adjoint of input `i` from the output adjoint, `ȳ · ∂y/∂xᵢ`
///   (summed back to input `i`'s shape where it was broadcast);
/// - `swiftSource(_:)`: the Swift expression that applies the op to argument expressions.
///
/// The JVP and VJP rules must be written with differentiable tensor ops (never raw buffers), so that
/// the levels below the one being differentiated record them: that is what makes every derivative
/// differentiable again (second order, HVPs, nesting) and what lets a staged derivative be obtained by
/// running the same rules on symbolic values.
///
/// A primitive is a value (usually a small struct of its attributes: an axis, an exponent, a target
/// shape), `Hashable` so that equal applications can be recognised, and `Sendable`. Apply it with
/// `apply(_:)` or by calling it: `MyOp(k: 2)(x)`. Most ops have one or two inputs; conform to
/// `UnaryPrimitive` or `BinaryPrimitive` to write the rules without input indices. Check a new
/// primitive with `gradcheck` at first and second order (Docs/guide.md, "Defining a primitive").
public protocol Primitive: Hashable, Sendable {
    /// The op's name, e.g. `"exp"` or `"matmul"`.
    var name: String { get }
    /// The shape of the output for inputs of `inputShapes`.
    func outputShape(_ inputShapes: [[Int]]) -> [Int]
    /// The output on constant inputs.
    func value(_ inputs: [Tensor]) -> Tensor
    /// The tangent of the output contributed by input `input`'s tangent `tangent`, `∂y/∂xᵢ · ẋᵢ`.
    func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor
    /// The adjoint of input `input` from the output's adjoint `adjoint`, `ȳ · ∂y/∂xᵢ`, of that input's shape.
    func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor
    /// The Swift expression applying the op to `arguments` (Swift expressions of the inputs).
    func swiftSource(_ arguments: [String]) -> String
    /// Writes the output into the preassigned buffer `buffers.output`, reading the inputs from
    /// `buffers.inputs` (how a compiled program runs an op without allocating). The default copies
    /// the inputs into tensors, calls `value(_:)` and copies the result: correct for every op, but it
    /// allocates; the built-in ops that matter write straight into the buffer.
    func evaluate(_ buffers: PrimitiveBuffers)
    /// When the output is a contiguous run of the first input's elements (a reshape, a slice of the
    /// outermost axis), the offset of its first element: a compiled program then points the output into
    /// the input's buffer instead of running the op. Default `nil` (the op writes its own buffer).
    func aliasOffset(_ inputShapes: [[Int]]) -> Int?
    /// The doubles of scratch memory `evaluate(_:)` needs for inputs of `inputShapes` (handed to it as
    /// `buffers.workspace`, part of the program's arena). Default 0.
    func workspaceCount(_ inputShapes: [[Int]]) -> Int
    /// The batching rule (`Program.vmap`): the op applied to every batch element at once, where input
    /// `k` has a leading batch axis of extent `batchSize` when `isBatched[k]` (at least one has) and is
    /// shared otherwise; returns the outputs stacked along a new leading axis, `[batchSize] + output
    /// shape`, emitted as ordinary primitives. The default (`applyPerBatchElement`) slices, applies and
    /// stacks, correct for every op; the ops that matter fold the batch into one application.
    func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor
}

/// The buffers of one application of a primitive inside a compiled program: the inputs' elements
/// (row-major, read-only, never overlapping the output) and the output's preassigned buffer, with
/// their shapes. Valid only during the `Primitive.evaluate(_:)` call that receives it.
public struct PrimitiveBuffers {
    /// The first element of each input, in input order.
    public let inputs: UnsafeBufferPointer<UnsafePointer<Double>>
    /// The shape of each input.
    public let inputShapes: [[Int]]
    /// The first element of the output (`outputCount` elements to write).
    public let output: UnsafeMutablePointer<Double>
    /// The shape of the output.
    public let outputShape: [Int]
    /// Scratch memory of at least `workspaceCount(inputShapes)` doubles, uninitialised.
    public let workspace: UnsafeMutablePointer<Double>

    /// The buffers of one application (the executor builds them; public so user primitives can be tested).
    public init(
        inputs: UnsafeBufferPointer<UnsafePointer<Double>>, inputShapes: [[Int]], output: UnsafeMutablePointer<Double>,
        outputShape: [Int], workspace: UnsafeMutablePointer<Double>
    ) {
        self.inputs = inputs
        self.inputShapes = inputShapes
        self.output = output
        self.outputShape = outputShape
        self.workspace = workspace
    }

    /// The elements of input `k`.
    public func input(_ k: Int) -> UnsafeBufferPointer<Double> {
        UnsafeBufferPointer(start: inputs[k], count: elementCount(inputShapes[k]))
    }

    /// The number of elements of input `k`.
    public func inputCount(_ k: Int) -> Int { elementCount(inputShapes[k]) }

    /// The number of output elements.
    public var outputCount: Int { elementCount(outputShape) }
}

/// The product of `shape[axes]` (all axes by default): the element count of a shape, or of some of its
/// axes. A plain loop, so the executor's per-call path calls no generic sequence algorithm (those
/// allocate in unoptimized builds).
func elementCount(_ shape: [Int], axes: Range<Int>? = nil) -> Int {
    var product = 1, axis = axes?.lowerBound ?? 0
    let end = axes?.upperBound ?? shape.count
    while axis < end {
        product *= shape[axis]
        axis += 1
    }
    return product
}

/// A primitive of one input, with its rules written without input indices.
public protocol UnaryPrimitive: Primitive {
    /// The shape of the output for an input of `shape` (the default keeps the shape: element-wise).
    func outputShape(_ shape: [Int]) -> [Int]
    /// The output on a constant input.
    func value(_ x: Tensor) -> Tensor
    /// `∂y/∂x · t`.
    func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor
    /// `g · ∂y/∂x`.
    func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor
    /// The Swift expression applying the op to `x`.
    func swiftSource(_ x: String) -> String
    /// The reverse tape's first-order fast path of `vjp(_:x:y:)`: overwrites `adjoint` with
    /// `adjoint · ∂y/∂x` in place and returns `true`, or returns `false` and leaves it unchanged when
    /// the op has no such path for these shapes. The tape calls it only on constants (no level
    /// differentiates the backward pass), so it may work on raw elements; it must equal `vjp` to
    /// rounding. Default `false`; `ElementwiseVJP` supplies it from one scalar formula.
    func vjpInPlace(_ adjoint: inout Tensor, x: Tensor, y: Tensor) -> Bool
    /// Whether `vjp(_:x:y:)` and `vjpInPlace` read the output `y` (its elements or its shape). When
    /// `false` (an element-wise op whose derivative is a function of `x`, like `sin`), the tape does not
    /// keep `y` for the backward pass and hands the rules `x` in its place. Default `true`.
    var vjpReadsOutput: Bool { get }
}

/// A primitive of two inputs, with one JVP and one VJP rule per input.
public protocol BinaryPrimitive: Primitive {
    /// The shape of the output for inputs of shapes `a` and `b`.
    func outputShape(_ a: [Int], _ b: [Int]) -> [Int]
    /// The output on constant inputs.
    func value(_ a: Tensor, _ b: Tensor) -> Tensor
    /// `∂y/∂a · t`.
    func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor
    /// `∂y/∂b · t`.
    func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor
    /// `g · ∂y/∂a`, of `a`'s shape.
    func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor
    /// `g · ∂y/∂b`, of `b`'s shape.
    func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor
    /// The Swift expression applying the op to `a` and `b`.
    func swiftSource(_ a: String, _ b: String) -> String
    /// The reverse tape's first-order fast path of `vjpA` (see `UnaryPrimitive.vjpInPlace`): overwrites
    /// `adjoint` with `a`'s adjoint and returns `true`, or returns `false` and leaves it unchanged.
    /// Default `false`; `ElementwiseBinaryVJP` supplies it.
    func vjpAInPlace(_ adjoint: inout Tensor, a: Tensor, b: Tensor, y: Tensor) -> Bool
    /// The same for `vjpB`.
    func vjpBInPlace(_ adjoint: inout Tensor, a: Tensor, b: Tensor, y: Tensor) -> Bool
    /// Whether the VJP rules (and their in-place paths) read the output `y` (its elements or its shape).
    /// When `false` and `a` has the output's shape, the tape does not keep `y` for the backward pass and
    /// hands the rules `a` in its place. Default `true`.
    var vjpReadsOutput: Bool { get }
}

extension UnaryPrimitive {
    public func outputShape(_ shape: [Int]) -> [Int] { shape }
    public func outputShape(_ inputShapes: [[Int]]) -> [Int] { outputShape(inputShapes[0]) }
    public func value(_ inputs: [Tensor]) -> Tensor { value(inputs[0]) }
    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        jvp(tangent, x: inputs[0], y: output)
    }
    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        vjp(adjoint, x: inputs[0], y: output)
    }
    public func swiftSource(_ arguments: [String]) -> String { swiftSource(arguments[0]) }
    /// No fast path by default: the tape runs `vjp(_:x:y:)`.
    public func vjpInPlace(_ adjoint: inout Tensor, x: Tensor, y: Tensor) -> Bool { false }
    /// The rules may read the output by default.
    public var vjpReadsOutput: Bool { true }

    /// Applies the op to `x` through the engine (recording on every active level).
    public func callAsFunction(_ x: Tensor) -> Tensor { Application.unary(self, x) }
}

extension BinaryPrimitive {
    public func outputShape(_ inputShapes: [[Int]]) -> [Int] { outputShape(inputShapes[0], inputShapes[1]) }
    public func value(_ inputs: [Tensor]) -> Tensor { value(inputs[0], inputs[1]) }
    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        input == 0
            ? jvpA(tangent, a: inputs[0], b: inputs[1], y: output)
            : jvpB(tangent, a: inputs[0], b: inputs[1], y: output)
    }
    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        input == 0
            ? vjpA(adjoint, a: inputs[0], b: inputs[1], y: output)
            : vjpB(adjoint, a: inputs[0], b: inputs[1], y: output)
    }
    public func swiftSource(_ arguments: [String]) -> String { swiftSource(arguments[0], arguments[1]) }
    /// No fast path by default: the tape runs `vjpA`.
    public func vjpAInPlace(_ adjoint: inout Tensor, a: Tensor, b: Tensor, y: Tensor) -> Bool { false }
    /// No fast path by default: the tape runs `vjpB`.
    public func vjpBInPlace(_ adjoint: inout Tensor, a: Tensor, b: Tensor, y: Tensor) -> Bool { false }
    /// The rules may read the output by default.
    public var vjpReadsOutput: Bool { true }

    /// Applies the op to `a` and `b` through the engine (recording on every active level).
    public func callAsFunction(_ a: Tensor, _ b: Tensor) -> Tensor { Application.binary(self, a, b) }
}

extension Primitive {
    /// Applies the op to `inputs` through the engine (recording on every active level).
    public func apply(_ inputs: [Tensor]) -> Tensor { Application.nary(self, inputs) }

    /// The default buffer-level evaluation: `evaluateThroughValue(_:)`.
    public func evaluate(_ buffers: PrimitiveBuffers) { evaluateThroughValue(buffers) }

    /// Not an alias by default.
    public func aliasOffset(_ inputShapes: [[Int]]) -> Int? { nil }

    /// No scratch memory by default.
    public func workspaceCount(_ inputShapes: [[Int]]) -> Int { 0 }

    /// Copies the inputs into constant tensors, runs `value(_:)` and copies its result into the output
    /// buffer: the allocating fallback of `evaluate(_:)` (also what an op's own `evaluate` calls for the
    /// rare layouts its buffer kernel does not cover).
    public func evaluateThroughValue(_ buffers: PrimitiveBuffers) {
        let inputs = buffers.inputShapes.indices.map {
            Tensor(shape: buffers.inputShapes[$0], scalars: Array(buffers.input($0)), trace: nil)
        }
        let result = value(inputs)
        engineCheck(
            result.shape == buffers.outputShape,
            "\(AutoDiffError.shapeMismatch(op: name, lhs: result.shape, rhs: buffers.outputShape, reason: "value(_:) returned the first shape, outputShape(_:) promised the second"))")
        result.storage.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { buffers.output.update(from: base, count: source.count) }
        }
    }
}

/// A one-input element-wise primitive whose VJP is, element by element, a scalar function of the
/// adjoint, input and output elements: `x̄ᵢ = vjp(element: ȳᵢ, x: xᵢ, y: yᵢ)` (for `y = φ(x)`, that is
/// `ȳᵢ · φ'(xᵢ)`). Conforming gives the reverse tape its first-order fast path (`vjpInPlace`): when no
/// outer level differentiates the backward pass, the adjoint is overwritten in place, with no tensor
/// allocated and no op recorded. The tensor rule `vjp(_:x:y:)` stays the one used at higher order, so
/// the scalar formula must equal it to rounding (write it with the same operations in the same order).
public protocol ElementwiseVJP: UnaryPrimitive {
    /// One element of `vjp(_:x:y:)`: the input's adjoint from the output's adjoint `g` and the input and
    /// output elements `x`, `y`.
    func vjp(element g: Double, x: Double, y: Double) -> Double
}

extension ElementwiseVJP {
    /// `adjoint[i] = vjp(element: adjoint[i], x: x[i], y: y[i])` when all three have one shape.
    public func vjpInPlace(_ adjoint: inout Tensor, x: Tensor, y: Tensor) -> Bool {
        let n = adjoint.storage.count
        guard x.shape == adjoint.shape, x.storage.count == n, y.storage.count == n else { return false }
        adjoint.storage.withUnsafeMutableBufferPointer { g in
            x.storage.withUnsafeBufferPointer { xs in
                y.storage.withUnsafeBufferPointer { ys in
                    for i in 0..<n { g[i] = vjp(element: g[i], x: xs[i], y: ys[i]) }
                }
            }
        }
        return true
    }
}

/// A two-input element-wise primitive (with broadcasting) whose VJPs are, element by element, scalar
/// functions of the adjoint, input and output elements: `āᵢ = vjpA(element: ȳᵢ, a: aᵢ, b: bᵢ, y: yᵢ)`,
/// likewise `b̄`. Conforming gives the reverse tape its first-order fast path (`vjpAInPlace`,
/// `vjpBInPlace`) for an input that is not broadcast, against another of the same element count or of
/// one element; broadcast inputs, and every level above the first, run the tensor rules, which the
/// scalar formulas must equal to rounding.
public protocol ElementwiseBinaryVJP: BinaryPrimitive {
    /// One element of `vjpA`: `a`'s adjoint from the output's adjoint `g` and the elements `a`, `b`, `y`.
    func vjpA(element g: Double, a: Double, b: Double, y: Double) -> Double
    /// One element of `vjpB`: `b`'s adjoint from the output's adjoint `g` and the elements `a`, `b`, `y`.
    func vjpB(element g: Double, a: Double, b: Double, y: Double) -> Double
}

extension ElementwiseBinaryVJP {
    /// `adjoint[i] = vjpA(element: adjoint[i], a: a[i], b: b[i or 0], y: y[i])` when `a` has the
    /// adjoint's shape and `b` its element count or one element.
    public func vjpAInPlace(_ adjoint: inout Tensor, a: Tensor, b: Tensor, y: Tensor) -> Bool {
        updateInPlace(&adjoint, input: a, other: b, y: y) { g, a, b, y in vjpA(element: g, a: a, b: b, y: y) }
    }

    /// `adjoint[i] = vjpB(element: adjoint[i], a: a[i or 0], b: b[i], y: y[i])` when `b` has the
    /// adjoint's shape and `a` its element count or one element.
    public func vjpBInPlace(_ adjoint: inout Tensor, a: Tensor, b: Tensor, y: Tensor) -> Bool {
        updateInPlace(&adjoint, input: b, other: a, y: y) { g, b, a, y in vjpB(element: g, a: a, b: b, y: y) }
    }

    /// `adjoint[i] = rule(adjoint[i], input[i], other[i or 0], y[i])`, or `false` when `input` does not
    /// have the adjoint's shape or `other` is broadcast along more than one element.
    @inline(__always)
    private func updateInPlace(
        _ adjoint: inout Tensor, input: Tensor, other: Tensor, y: Tensor,
        _ rule: (Double, Double, Double, Double) -> Double
    ) -> Bool {
        let n = adjoint.storage.count, m = other.storage.count
        guard input.shape == adjoint.shape, input.storage.count == n, y.storage.count == n, m == n || m == 1
        else { return false }
        adjoint.storage.withUnsafeMutableBufferPointer { g in
            input.storage.withUnsafeBufferPointer { xs in
                other.storage.withUnsafeBufferPointer { os in
                    y.storage.withUnsafeBufferPointer { ys in
                        if m == n {
                            for i in 0..<n { g[i] = rule(g[i], xs[i], os[i], ys[i]) }
                        } else {
                            let o = os[0]
                            for i in 0..<n { g[i] = rule(g[i], xs[i], o, ys[i]) }
                        }
                    }
                }
            }
        }
        return true
    }
}
