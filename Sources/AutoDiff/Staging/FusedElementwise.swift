/// A tree of element-wise ops evaluated as one pass over blocks of elements, optionally summed on the
/// fly — to one element, or along its leading axes to a row (created by `Program.fusingElementwise()`).
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

    /// How element i of a tree of `shape` reads an operand of shape `operand`, if the operand broadcasts
    /// to `shape` along outer and inner axes only (its axes of extent above 1, right-aligned with
    /// `shape`'s, are one run of `shape`'s axes): its element `(i / inner) mod period`. A row
    /// (`tiles`) has `inner` 1, a column `[m, 1]` of `[m, n]` has `inner` n; nil for any other operand.
    /// A plain loop (the per-call path runs it).
    static func layout(_ operand: [Int], in shape: [Int]) -> (period: Int, inner: Int)? {
        guard operand.count <= shape.count else { return nil }
        let padding = shape.count - operand.count
        // Axes of extent 1 in `shape` are skipped; `inner` counts the broadcast axes after the run.
        var period = 1, inner = 1, runEnded = false, axis = 0
        while axis < shape.count {
            let extent = axis < padding ? 1 : operand[axis - padding]
            if shape[axis] != 1 {
                if extent == shape[axis] {
                    if runEnded { return nil }
                    period *= extent
                } else if extent == 1 {
                    if period > 1 { runEnded = true }
                    if runEnded { inner *= shape[axis] }
                } else {
                    return nil
                }
            } else if extent != 1 {
                return nil
            }
            axis += 1
        }
        return (period, inner)
    }

    /// Elements per block: a temporary of 512 doubles is 4 KB, so a tree's temporaries stay in L1/L2.
    /// Measured (P4 MLP staged gradient / HVP-rr, µs, best of 15 × 300 calls, two runs): 128 blocks
    /// 73.0–88.3 / 117–151, 256 67.4–68.3 / 108.8–109.2, 512 63.6–67.5 / 104.5–108.9, 1024 67.7–69.2 /
    /// 108.5–110.9, 2048 67.8–70.4 / 114.3–114.5, 8192 (one block) 72.1–73.1 / 117.2–117.7.
    static let blockSize = 512

    var steps: [Step]
    /// The shape of the tree's values (every operand has it, or broadcasts to it: `tiles`).
    var shape: [Int]
    /// When set, the output is the tree summed to this shape: one element (the total), or a shape that
    /// broadcasts to the tree's along leading axes (`tiles`: the sum over the leading axes, a row sum).
    var sumShape: [Int]?

    public var name: String {
        "fused(\(steps.map { "\($0.op)" }.joined(separator: ",")))" + (sumShape == nil ? "" : ".sum")
    }
    public func outputShape(_ inputShapes: [[Int]]) -> [Int] { sumShape ?? shape }

    public func value(_ inputs: [Tensor]) -> Tensor { value(inputs, keepingTree: false) }

    /// The output of `evaluate(_:keepingTree:)` as a tensor.
    func value(_ inputs: [Tensor], keepingTree: Bool) -> Tensor {
        let inputShapes = inputs.map(\.shape), outputShape = keepingTree ? treeAndSumShape : sumShape ?? shape
        let count = outputShape.reduce(1, *), scratch = workspaceCount(inputShapes)
        var workspace = [Double](unsafeUninitializedCapacity: scratch) { _, initialized in initialized = scratch }
        let out = [Double](unsafeUninitializedCapacity: count) { output, initialized in
            withExtendedLifetime(inputs) {
                let pointers = inputs.map { input in input.scalars.withUnsafeBufferPointer { $0.baseAddress ?? UnsafePointer(output.baseAddress!) } }
                pointers.withUnsafeBufferPointer { pointers in
                    workspace.withUnsafeMutableBufferPointer { workspace in
                        evaluate(
                            PrimitiveBuffers(
                                inputs: pointers, inputShapes: inputShapes, output: output.baseAddress!, outputShape: outputShape,
                                workspace: workspace.baseAddress ?? output.baseAddress!),
                            keepingTree: keepingTree)
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

    /// The most pieces a tree summed along axes is cut into: a fixed number (not one per core), so its
    /// partial sums, added in piece order, do not depend on the machine.
    static let axisSumPieces = 8

    /// How many pieces the blocks of `count` elements are cut into for large trees: four per core (of
    /// at least 16 blocks each), handed out to the cores as they come free, so a core that the system
    /// takes away mid-call delays one small piece rather than half of the tree; at most
    /// `axisSumPieces` when `summingAxes` (each piece accumulates its own partial sums).
    static func pieces(_ count: Int, summingAxes: Bool = false) -> Int {
        guard count >= parallelCount else { return 1 }
        return Swift.max(1, Swift.min(summingAxes ? axisSumPieces : 4 * MatmulKernel.cores, count / (16 * blockSize)))
    }

    /// The number of elements of the sum (`nil` without a sum).
    var sumCount: Int? { sumShape.map { elementCount($0) } }

    /// Whether the tree is summed along its leading axes to more than one element (a row sum).
    var summingAxes: Bool { (sumCount ?? 1) > 1 }

    /// Registers per piece (one block per step and per input), then the block totals of a full sum or
    /// the partial sums of pieces after the first of an axis sum.
    public func workspaceCount(_ inputShapes: [[Int]]) -> Int {
        let n = elementCount(shape), block = Swift.min(Self.blockSize, n), pieces = Self.pieces(n, summingAxes: summingAxes)
        let blocks = block == 0 ? 0 : (n + block - 1) / block
        let sums = sumCount.map { $0 == 1 ? blocks : (pieces - 1) * $0 } ?? 0
        return (steps.count + inputShapes.count) * block * pieces + sums
    }

    public func evaluate(_ buffers: PrimitiveBuffers) { evaluate(buffers, keepingTree: false) }

    /// One pass over blocks of `blockSize` elements: every step over the block into a register (the
    /// last into the output when the tree is kept), then, for a sum, the block's total (a full sum) or
    /// the block added into the running row sums (an axis sum: element i into sum element i mod its
    /// count, in element order — the order of the unfused `sumToShape`). With `keepingTree`, the output
    /// holds the tree's elements followed by the sum's. Large trees cut the blocks into contiguous runs
    /// (`pieces`), each with its own registers (and partial row sums, added in piece order afterwards);
    /// every element goes through the same steps whatever the split, and a full sum adds the block
    /// totals in block order, so the result does not depend on the number of cores.
    func evaluate(_ buffers: PrimitiveBuffers, keepingTree: Bool) {
        let n = elementCount(shape), block = Swift.min(Self.blockSize, n), sumCount = sumCount ?? 0
        let tree: UnsafeMutablePointer<Double>? = sumShape == nil || keepingTree ? buffers.output : nil
        let sum = buffers.output + (keepingTree ? n : 0)
        if sumCount > 0 { sum.update(repeating: 0, count: sumCount) }
        guard n > 0 else { return }
        let blocks = (n + block - 1) / block, pieces = Self.pieces(n, summingAxes: summingAxes), inputCount = buffers.inputs.count
        let registersPerPiece = (steps.count + inputCount) * block
        let sums = buffers.workspace + registersPerPiece * pieces
        if summingAxes { sums.update(repeating: 0, count: (pieces - 1) * sumCount) }
        // Each input's element count and how it is read when broadcast (`layout`), worked out once per
        // call, not per block and step.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * Swift.max(1, inputCount)) { layouts in
            for k in 0..<inputCount {
                layouts[3 * k] = buffers.inputCount(k)
                if layouts[3 * k] != 1 && layouts[3 * k] != n {
                    (layouts[3 * k + 1], layouts[3 * k + 2]) = Self.layout(buffers.inputShapes[k], in: shape)!
                }
            }
            func run(piece: Int) {
                // Registers: one block per step, then one per input that is broadcast (one element: filled
                // once; a row: tiled for each block). Every register is written before it is read.
                let base = buffers.workspace + piece * registersPerPiece
                let rowSums = piece == 0 ? sum : sums + (piece - 1) * sumCount
                for k in 0..<inputCount where layouts[3 * k] == 1 {
                    (base + (steps.count + k) * block).initialize(repeating: buffers.inputs[k][0], count: block)
                }
                func pointer(_ operand: Operand, _ start: Int) -> UnsafePointer<Double> {
                    switch operand {
                    case let .input(k):
                        return layouts[3 * k] == n ? buffers.inputs[k] + start : UnsafePointer(base + (steps.count + k) * block)
                    case let .step(j): return UnsafePointer(base + j * block)
                    }
                }
                for b in (piece * blocks / pieces)..<((piece + 1) * blocks / pieces) {
                    let start = b * block, count = Swift.min(block, n - start)
                    for k in 0..<inputCount where layouts[3 * k] != 1 && layouts[3 * k] != n {
                        Self.fill(
                            base + (steps.count + k) * block, from: buffers.inputs[k], period: layouts[3 * k + 1],
                            inner: layouts[3 * k + 2], start, count)
                    }
                    let last = tree.map { $0 + start } ?? base + (steps.count - 1) * block
                    for s in 0..<steps.count {
                        let step = steps[s]
                        let destination = s == steps.count - 1 ? last : base + s * block
                        let first = pointer(step.operands[0], start)
                        let second = step.operands.count > 1 ? pointer(step.operands[1], start) : first
                        Self.run(step.op, first, second, destination, count)
                    }
                    if sumCount == 1 {
                        sums[b] = MatmulKernel.sum(count, last)
                    } else if sumCount > 1 {
                        Self.forEachRun(period: sumCount, from: start, count: count) { position, offset, run in
                            ArithmeticKernel.add(run, rowSums + position, 1, last + offset, 1, rowSums + position)
                        }
                    }
                }
            }
            if pieces == 1 { run(piece: 0) } else { parallelFor(pieces) { run(piece: $0) } }
        }
        if sumCount == 1 {
            var total = 0.0
            for b in 0..<blocks { total += sums[b] }
            sum[0] = total
        }
        for piece in 1..<Swift.max(1, summingAxes ? pieces : 1) {
            ArithmeticKernel.add(sumCount, sum, 1, sums + (piece - 1) * sumCount, 1, sum)
        }
    }

    /// Writes elements `start..<start + count` of `operand` broadcast to the tree's shape (read as its
    /// element `(i / inner) mod period`: `layout`) into `register`: runs of a row copied, or each element
    /// of a column repeated.
    static func fill(
        _ register: UnsafeMutablePointer<Double>, from operand: UnsafePointer<Double>, period: Int, inner: Int, _ start: Int,
        _ count: Int
    ) {
        if inner == 1 {
            forEachRun(period: period, from: start, count: count) { position, offset, run in
                (register + offset).initialize(from: operand + position, count: run)
            }
            return
        }
        var offset = 0
        while offset < count {
            let element = start + offset, run = Swift.min(inner - element % inner, count - offset)
            (register + offset).initialize(repeating: operand[(element / inner) % period], count: run)
            offset += run
        }
    }

    /// Calls `body(position, offset, run)` for the runs that cover elements `start..<start + count` of a
    /// sequence repeating a row of `period` elements: `run` elements from the row's element `position`,
    /// at `offset` from `start` (how a row operand is tiled, and how a row sum is accumulated).
    static func forEachRun(period: Int, from start: Int, count: Int, _ body: (Int, Int, Int) -> Void) {
        var offset = 0, position = start % period
        while offset < count {
            let run = Swift.min(period - position, count - offset)
            body(position, offset, run)
            offset += run
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

    /// The flat shape of the tree's elements followed by its sum's (`FusedElementwiseAndSum`).
    var treeAndSumShape: [Int] { [elementCount(shape) + (sumCount ?? 0)] }

    /// The tree applied with tensor ops, through the engine (recorded by every active level); with
    /// `keepingTree`, the tree's elements then its sum's, flattened into one vector.
    func unfused(_ inputs: [Tensor], keepingTree: Bool = false) -> Tensor {
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
        guard let sumShape else { return tree }
        let sum = tree.sum(toShape: sumShape)
        guard keepingTree else { return sum }
        let n = tree.count, total = treeAndSumShape
        return tree.reshaped(to: [n]).embedded(in: total, alongAxis: 0, at: 0)
            + sum.reshaped(to: [sum.count]).embedded(in: total, alongAxis: 0, at: n)
    }

    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        jvp(tangent, input: input, inputs: inputs, keepingTree: false)
    }

    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        vjp(adjoint, input: input, inputs: inputs, keepingTree: false)
    }

    /// The tangent of `unfused(_:keepingTree:)` along input `input`.
    func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], keepingTree: Bool) -> Tensor {
        AutoDiff.jvp(at: inputs[input], direction: tangent) { x in
            var replaced = inputs
            replaced[input] = x
            return unfused(replaced, keepingTree: keepingTree)
        }.tangent
    }

    /// The adjoint of input `input` of `unfused(_:keepingTree:)`.
    func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], keepingTree: Bool) -> Tensor {
        AutoDiff.vjp(at: inputs[input]) { x in
            var replaced = inputs
            replaced[input] = x
            return unfused(replaced, keepingTree: keepingTree)
        }.pullback(adjoint)
    }

    /// The tree as one Swift expression of tensor ops (emitted source stays unfused and readable; a
    /// step read twice is spelled twice: `swiftStatements` names it once instead).
    public func swiftSource(_ arguments: [String]) -> String { swiftStatements(arguments, name: nil).expression }

    /// The tree's elements then its sum's as one Swift expression (the tree spelled twice).
    func swiftSourceKeepingTree(_ arguments: [String]) -> String {
        let (tree, n, total) = (swiftStatements(arguments, name: nil).expression, elementCount(shape), treeAndSumShape)
        let flat = "(\(tree)).reshaped(to: [\(n)])"
        return "\(flat).embedded(in: \(total), alongAxis: 0, at: 0) + \(flat).sum(toShape: \(sumShape ?? []))"
            + ".reshaped(to: [\(sumCount ?? 0)]).embedded(in: \(total), alongAxis: 0, at: \(n))"
    }

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

/// A `FusedElementwise` tree with a sum whose elements are needed too: one pass writes the tree's
/// elements and accumulates the sum, into one flat output (the tree's elements, then the sum's), which
/// the program reads through two contiguous slices (buffer aliases in a compiled program, no copy).
/// Created by `Program.fusingElementwise()` when a tree has readers besides its `sumToShape`: the
/// separate reduction pass over the materialized tree is gone. Rules: those of the tree and its sum
/// (`FusedElementwise.unfused(_:keepingTree:)`, differentiated by the engine).
public struct FusedElementwiseAndSum: Primitive {
    /// The tree; its `sumShape` is set.
    var tree: FusedElementwise

    public var name: String { tree.name + "+tree" }
    public func outputShape(_ inputShapes: [[Int]]) -> [Int] { tree.treeAndSumShape }
    public func value(_ inputs: [Tensor]) -> Tensor { tree.value(inputs, keepingTree: true) }
    public func evaluate(_ buffers: PrimitiveBuffers) { tree.evaluate(buffers, keepingTree: true) }
    public func workspaceCount(_ inputShapes: [[Int]]) -> Int { tree.workspaceCount(inputShapes) }
    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        tree.jvp(tangent, input: input, inputs: inputs, keepingTree: true)
    }
    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        tree.vjp(adjoint, input: input, inputs: inputs, keepingTree: true)
    }
    public func swiftSource(_ arguments: [String]) -> String { tree.swiftSourceKeepingTree(arguments) }
}
