/// A tree of element-wise ops evaluated as one pass over blocks of elements, optionally summed to a
/// scalar on the fly (created by `Program.fusingElementwise()`).
///
/// `steps` run in order; each reads fused inputs (of the output's shape, or broadcast along leading
/// axes: one element, a row) or earlier steps; the last step is the output. Evaluation walks the output in blocks of `blockSize` elements,
/// running every step over the block into a cache-resident temporary, so memory traffic is one read
/// of each input and one write of the output. Rules: the tree applied with tensor ops (each step's own
/// primitive) and differentiated by the engine, so the fused op is differentiable to any order.
public struct FusedElementwise: Primitive {
    /// Where a step reads an operand.
    enum Operand: Hashable, Sendable {
        /// Input k of the fused application.
        case input(Int)
        /// The result of an earlier step.
        case step(Int)
    }

    /// One element-wise op of the tree.
    struct Step: Hashable, Sendable {
        var op: ScalarOp
        var operands: [Operand]
    }

    /// Whether an operand of shape `operand` broadcasts to `shape` along leading axes only: without its
    /// leading 1s it is a trailing part of `shape` (one element included), so element i of the tree
    /// reads the operand's element i mod its count.
    static func tiles(_ operand: [Int], _ shape: [Int]) -> Bool {
        let trimmed = operand.drop { $0 == 1 }
        return trimmed.count <= shape.count && Array(trimmed) == Array(shape.suffix(trimmed.count))
    }

    /// Elements per block: a temporary of 512 doubles is 4 KB, so a tree's temporaries stay in L1/L2.
    static let blockSize = 512

    var steps: [Step]
    /// The shape of the tree's values (every operand has it, or broadcasts to it: `tiles`).
    var shape: [Int]
    /// When set, the output is the sum of all the tree's elements, of this one-element shape.
    var sumShape: [Int]?

    public var name: String {
        "fused(\(steps.map { "\($0.op)" }.joined(separator: ",")))" + (sumShape == nil ? "" : ".sum")
    }
    public func outputShape(_ inputShapes: [[Int]]) -> [Int] { sumShape ?? shape }

    public func value(_ inputs: [Tensor]) -> Tensor {
        let inputShapes = inputs.map(\.shape), outputShape = sumShape ?? shape
        let count = outputShape.reduce(1, *), scratch = workspaceCount(inputShapes)
        var workspace = [Double](unsafeUninitializedCapacity: scratch) { _, initialized in initialized = scratch }
        let out = [Double](unsafeUninitializedCapacity: count) { output, initialized in
            withExtendedLifetime(inputs) {
                let pointers = inputs.map { input in input.scalars.withUnsafeBufferPointer { $0.baseAddress ?? UnsafePointer(output.baseAddress!) } }
                pointers.withUnsafeBufferPointer { pointers in
                    workspace.withUnsafeMutableBufferPointer { workspace in
                        evaluate(PrimitiveBuffers(
                            inputs: pointers, inputShapes: inputShapes, output: output.baseAddress!, outputShape: outputShape,
                            workspace: workspace.baseAddress ?? output.baseAddress!))
                    }
                }
            }
            initialized = count
        }
        return Tensor(shape: outputShape, scalars: out, trace: nil)
    }

    /// Elements from which a tree runs on several cores (measured on Rosenbrock: below it, the dispatch
    /// costs more than the split saves).
    static let parallelCount = 1 << 15

    /// How many pieces the blocks of `count` elements are cut into for large trees: four per core (of
    /// at least 16 blocks each), handed out to the cores as they come free, so a core that the system
    /// takes away mid-call delays one small piece rather than half of the tree.
    static func pieces(_ count: Int) -> Int {
        count >= parallelCount ? Swift.max(1, Swift.min(4 * MatmulKernel.cores, count / (16 * blockSize))) : 1
    }

    /// Registers per piece (one block per step and per input), the block totals of a fused sum after them.
    public func workspaceCount(_ inputShapes: [[Int]]) -> Int {
        let n = elementCount(shape), block = Swift.min(Self.blockSize, n)
        let blocks = block == 0 ? 0 : (n + block - 1) / block
        return (steps.count + inputShapes.count) * block * Self.pieces(n) + (sumShape == nil ? 0 : blocks)
    }

    /// One pass over blocks of `blockSize` elements: every step over the block into a register (the
    /// last into the output), or the block's total for a fused sum. Large trees cut the blocks into
    /// contiguous runs (`pieces`, several per core), each with its own registers; every element goes
    /// through the same steps whatever the split, and a fused sum adds the block totals in block order
    /// afterwards, so the result does not depend on the number of cores.
    public func evaluate(_ buffers: PrimitiveBuffers) {
        let n = elementCount(shape), block = Swift.min(Self.blockSize, n)
        guard n > 0 else {
            if sumShape != nil { buffers.output[0] = 0 }
            return
        }
        let blocks = (n + block - 1) / block, pieces = Self.pieces(n), inputCount = buffers.inputs.count
        let registersPerPiece = (steps.count + inputCount) * block
        let blockTotals = buffers.workspace + registersPerPiece * pieces
        func run(piece: Int) {
            // Registers: one block per step, then one per input that is broadcast (one element: filled
            // once; a row: tiled for each block). Every register is written before it is read.
            let base = buffers.workspace + piece * registersPerPiece
            for k in 0..<inputCount where buffers.inputCount(k) == 1 {
                (base + (steps.count + k) * block).initialize(repeating: buffers.inputs[k][0], count: block)
            }
            func pointer(_ operand: Operand, _ start: Int) -> UnsafePointer<Double> {
                switch operand {
                case let .input(k):
                    return buffers.inputCount(k) == n ? buffers.inputs[k] + start : UnsafePointer(base + (steps.count + k) * block)
                case let .step(j): return UnsafePointer(base + j * block)
                }
            }
            for b in (piece * blocks / pieces)..<((piece + 1) * blocks / pieces) {
                let start = b * block, count = Swift.min(block, n - start)
                for k in 0..<inputCount where buffers.inputCount(k) != 1 && buffers.inputCount(k) != n {
                    Self.tile(buffers.inputs[k], period: buffers.inputCount(k), from: start, count: count,
                              into: base + (steps.count + k) * block)
                }
                for s in 0..<steps.count {
                    let step = steps[s]
                    let isOutput = s == steps.count - 1 && sumShape == nil
                    let destination = isOutput ? buffers.output + start : base + s * block
                    let first = pointer(step.operands[0], start)
                    let second = step.operands.count > 1 ? pointer(step.operands[1], start) : first
                    Self.run(step.op, first, second, destination, count)
                }
                if sumShape != nil { blockTotals[b] = MatmulKernel.sum(count, base + (steps.count - 1) * block) }
            }
        }
        if pieces == 1 { run(piece: 0) } else { parallelFor(pieces) { run(piece: $0) } }
        if sumShape != nil {
            var total = 0.0
            for b in 0..<blocks { total += blockTotals[b] }
            buffers.output[0] = total
        }
    }

    /// Writes elements `start..<start + count` of `row` (of `period` elements) repeated into `register`.
    static func tile(
        _ row: UnsafePointer<Double>, period: Int, from start: Int, count: Int, into register: UnsafeMutablePointer<Double>
    ) {
        var written = 0, position = start % period
        while written < count {
            let run = Swift.min(period - position, count - written)
            (register + written).initialize(from: row + position, count: run)
            written += run
            position = 0
        }
    }

    /// `y[i] = op(a[i])` or `op(a[i], b[i])` for `i < count`, by the same kernel the op's primitive runs
    /// (the C arithmetic kernels, the vector transcendental functions, the ops' own loops), so a fused
    /// tree gives the bits of the unfused ops (`b` is ignored by one-operand ops).
    static func run(
        _ op: ScalarOp, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>,
        _ count: Int
    ) {
        let x = UnsafeBufferPointer(start: a, count: count)
        switch op {
        case .add: ArithmeticKernel.add(count, a, 1, b, 1, y)
        case .subtract: ArithmeticKernel.subtract(count, a, 1, b, 1, y)
        case .multiply: ArithmeticKernel.multiply(count, a, 1, b, 1, y)
        case .divide: ArithmeticKernel.divide(count, a, 1, b, 1, y)
        case .negate: VectorMath.negate(x, y)
        case .exp: VectorMath.exp(x, y)
        case .log: VectorMath.log(x, y)
        case .sqrt: Sqrt.kernel(x, y)
        case let .pow(p): PowConstant(exponent: p).kernel(x, y)
        case .tanh: VectorMath.tanh(x, y)
        case .sigmoid: VectorMath.sigmoid(x, y)
        case .softplus: VectorMath.softplus(x, y)
        case .relu: Relu.kernel(x, y)
        case .sin: Sin.kernel(x, y)
        case .cos: Cos.kernel(x, y)
        case .abs: Abs.kernel(x, y)
        case .sign: PiecewiseConstant.sign.kernel(x, y)
        case .step: PiecewiseConstant.step.kernel(x, y)
        }
    }

    /// The tree applied with tensor ops, through the engine (recorded by every active level).
    func unfused(_ inputs: [Tensor]) -> Tensor {
        var results = [Tensor]()
        for step in steps {
            let operands = step.operands.map { operand -> Tensor in
                switch operand {
                case let .input(k): return inputs[k]
                case let .step(j): return results[j]
                }
            }
            results.append(Schedule.apply(step.op.primitive, operands))
        }
        let tree = results[results.count - 1]
        return sumShape.map { tree.sum(toShape: $0) } ?? tree
    }

    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        AutoDiff.jvp(at: inputs[input], direction: tangent) { x in
            var replaced = inputs
            replaced[input] = x
            return unfused(replaced)
        }.tangent
    }

    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        AutoDiff.vjp(at: inputs[input]) { x in
            var replaced = inputs
            replaced[input] = x
            return unfused(replaced)
        }.pullback(adjoint)
    }

    /// The tree as one Swift expression of tensor ops (emitted source stays unfused and readable; a
    /// step read twice is spelled twice: `swiftStatements` names it once instead).
    public func swiftSource(_ arguments: [String]) -> String { swiftStatements(arguments, name: nil).expression }

    /// The tree as Swift source: a `let` (named `name_s`) for every step read by two later steps when
    /// `name` is given, and the expression of the result.
    func swiftStatements(_ arguments: [String], name: String?) -> (lets: [(name: String, expression: String)], expression: String) {
        var reads = [Int](repeating: 0, count: steps.count)
        for step in steps { for case let .step(j) in step.operands { reads[j] += 1 } }
        var expressions = [String](), lets = [(name: String, expression: String)]()
        for (s, step) in steps.enumerated() {
            let operands = step.operands.map { operand -> String in
                switch operand {
                case let .input(k): return arguments[k]
                case let .step(j): return reads[j] > 1 && name != nil ? expressions[j] : "(\(expressions[j]))"
                }
            }
            let expression = step.op.primitive.swiftSource(operands)
            if let name, reads[s] > 1, s < steps.count - 1 {
                lets.append(("\(name)_\(s)", expression))
                expressions.append("\(name)_\(s)")
            } else {
                expressions.append(expression)
            }
        }
        let tree = expressions[expressions.count - 1]
        return (lets, sumShape.map { "(\(tree)).sum(toShape: \($0))" } ?? tree)
    }
}
