import Foundation

// Element-wise fusion: a tree of element-wise ops of one shape (with scalar or row operands) becomes one
// `FusedElementwise` application, evaluated block by block so every intermediate stays in cache
// (numexpr-style) instead of one allocation and one pass over memory per op.

extension Program {
    /// Replaces each tree of element-wise applications of one output shape — whose inner values are
    /// read only inside the tree (by one or several of its ops) — by one `FusedElementwise` application,
    /// together with a `sumToShape` of the tree: a sum of all its elements or along its leading axes (a
    /// row sum, `[B, H]` to `[H]` or `[1, H]`). When that sum is the tree's only reader, the sum alone is
    /// accumulated block by block; when the tree is read elsewhere too, one `FusedElementwiseAndSum`
    /// pass writes the tree and accumulates the sum, both read through slices of its output (no
    /// separate reduction pass over the materialized tree). Operands must have the output's shape or
    /// broadcast to it along outer and inner axes (one element, a row, a column `[m, 1]` of `[m, n]`:
    /// `FusedElementwise.layout`); a `broadcast` of such an operand is read as its argument (no broadcast
    /// copy), and so is a one-op tree that would otherwise need one. Each element goes
    /// through the same scalar functions in the same order (bit-identical results); a fused full sum adds
    /// block totals, so it differs from the unfused sum by rounding only; a fused row sum adds the rows
    /// in the unfused order (the same bits) unless the tree is large enough to be cut into pieces.
    ///
    /// Measured and not kept (P4 MLP staged gradient / HVP-rr / HVP-fr, µs, best of 15 × 300 calls,
    /// the variants interleaved in one process, three runs): with the tree-and-sum pass and neither of
    /// the following, 65.8–67.9 / 108.8–109.9 / 106.2–108.3; without the tree-and-sum pass (a separate
    /// `sumToShape` over the written tree) 69.0–69.3 / 110.0–112.9 / 108.8–111.1. Recomputing a cheap
    /// value (`add`, `subtract`, `multiply`, `negate`, two levels deep) inside every tree that reads it
    /// instead of writing it once: 66.3–68.0 / 111.9–113.8 / 110.5–110.7. Rewriting an outer product
    /// (a `matmul` of depth 1, `ȳ wᵀ` in the reverse pass) into a broadcast `multiply` of a column and
    /// a row read inside its tree, on top of that: 68.2–70.1 / 115.3–120.7 / 111.9–114.9. At this size
    /// (64 KB per `[128, 64]` value, in L2) one more pass over a written temporary costs less than the
    /// extra block-by-block steps and register fills.
    public func fusingElementwise() -> Program {
        // Readers, not reads: `add(x, x)` reads x once as far as fusion goes (one step computes it).
        var readers = [[Int]](repeating: [], count: instructions.count)
        var isOutput = [Bool](repeating: false, count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            if case let .apply(_, arguments) = instruction.operation { for a in Set(arguments) { readers[a].append(i) } }
        }
        for output in outputs { isOutput[output] = true }
        func scalarOp(_ i: Int) -> ScalarOp? {
            guard case let .apply(op, arguments) = instructions[i].operation, let scalar = ScalarOp(op) else { return nil }
            let count = instructions[i].shape.reduce(1, *)
            let fits = arguments.allSatisfy { FusedElementwise.layout(instructions[$0].shape, in: instructions[i].shape) != nil }
            return fits && count > 1 ? scalar : nil
        }
        // A sum of a fusible value, of all its elements or along its leading axes.
        func reducedTree(_ i: Int) -> Int? {
            guard case let .apply(op, arguments) = instructions[i].operation, op is SumToShape, scalarOp(arguments[0]) != nil,
                FusedElementwise.tiles(instructions[i].shape, instructions[arguments[0]].shape),
                elementCount(instructions[i].shape) < elementCount(instructions[arguments[0]].shape)
            else { return nil }
            return arguments[0]
        }
        // The sum of a tree read only by it: the sum is accumulated block by block instead of the tree
        // being written out.
        func summedTree(_ i: Int) -> Int? {
            guard let tree = reducedTree(i), readers[tree] == [i], !isOutput[tree] else { return nil }
            return tree
        }
        // The sum of each tree that has other readers too (the first such sum): written with the tree.
        var sharedSum = [Int: Int]()
        for i in instructions.indices {
            if let tree = reducedTree(i), summedTree(i) == nil, !isOutput[tree], sharedSum[tree] == nil { sharedSum[tree] = i }
        }
        // Members of a tree, decided from the last value backwards: a fusible value that is not an
        // output and whose readers are all fusible values of its shape (or the sum of a summed tree) in
        // one tree joins that tree, where each block computes it once for all its readers.
        var root = Array(instructions.indices), absorbed = [Bool](repeating: false, count: instructions.count)
        for i in instructions.indices.reversed() {
            guard scalarOp(i) != nil, !isOutput[i], let first = readers[i].first,
                readers[i].allSatisfy({ root[$0] == root[first] }),
                readers[i].allSatisfy({ (scalarOp($0) != nil && instructions[$0].shape == instructions[i].shape) || summedTree($0) == i })
            else { continue }
            root[i] = root[first]
            absorbed[i] = true
        }
        var builder = ProgramBuilder()
        var renumbered = [Int](repeating: -1, count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            if absorbed[i] || renumbered[i] >= 0 { continue }
            let tree = summedTree(i)
            guard scalarOp(i) != nil || tree != nil else {
                var arguments = [Int]()
                if case let .apply(_, old) = instruction.operation { arguments = old.map { renumbered[$0] } }
                renumbered[i] = builder.add(instruction, arguments)
                continue
            }
            var steps = [FusedElementwise.Step](), inputs = [Int](), stepOf = [Int: Int]()
            func operand(_ value: Int) -> FusedElementwise.Operand {
                if let step = stepOf[value] { return .step(step) }
                if absorbed[value], case let .apply(op, arguments) = instructions[value].operation {
                    let operands = arguments.map(operand)
                    steps.append(FusedElementwise.Step(op: ScalarOp(op)!, operands: operands))
                    stepOf[value] = steps.count - 1
                    return .step(steps.count - 1)
                }
                // A broadcast along outer or inner axes is read as its argument, filled in block by block.
                var value = value
                if case let .apply(op, arguments) = instructions[value].operation, op is Broadcast,
                    FusedElementwise.layout(instructions[arguments[0]].shape, in: instructions[value].shape) != nil {
                    value = arguments[0]
                }
                if let k = inputs.firstIndex(of: value) { return .input(k) }
                inputs.append(value)
                return .input(inputs.count - 1)
            }
            guard case let .apply(op, arguments) = instruction.operation else { continue }
            if let tree {
                _ = operand(tree)
                let fused = FusedElementwise(steps: steps, shape: instructions[tree].shape, sumShape: instruction.shape)
                renumbered[i] = builder.add(.apply(fused, arguments: inputs.map { renumbered[$0] }), shape: instruction.shape)
                continue
            }
            let operands = arguments.map(operand)
            steps.append(FusedElementwise.Step(op: ScalarOp(op)!, operands: operands))
            if let sum = sharedSum[i] {
                let fused = FusedElementwise(steps: steps, shape: instruction.shape, sumShape: instructions[sum].shape)
                let both = builder.add(
                    .apply(FusedElementwiseAndSum(tree: fused), arguments: inputs.map { renumbered[$0] }), shape: fused.treeAndSumShape)
                func part(_ range: Range<Int>, _ shape: [Int]) -> Int {
                    let flat = builder.add(.apply(Slice(axis: 0, range: range), arguments: [both]), shape: [range.count])
                    return builder.add(.apply(Reshape(shape: shape), arguments: [flat]), shape: shape)
                }
                let n = elementCount(instruction.shape)
                renumbered[i] = part(0..<n, instruction.shape)
                renumbered[sum] = part(n..<(n + elementCount(instructions[sum].shape)), instructions[sum].shape)
            } else if steps.count == 1, inputs == arguments,
                arguments.allSatisfy({ FusedElementwise.tiles(instructions[$0].shape, instruction.shape) }) {
                renumbered[i] = builder.add(instruction, arguments.map { renumbered[$0] })
            } else {
                let fused = FusedElementwise(steps: steps, shape: instruction.shape, sumShape: nil)
                renumbered[i] = builder.add(.apply(fused, arguments: inputs.map { renumbered[$0] }), shape: instruction.shape)
            }
        }
        return Program(instructions: builder.instructions, outputs: outputs.map { renumbered[$0] }, inputShapes: inputShapes)
    }
}

/// The scalar function of an element-wise primitive, for fused evaluation.
enum ScalarOp: Hashable, Sendable {
    case add, subtract, multiply, divide, negate, exp, log, sqrt, pow(Double), tanh, sigmoid, softplus
    case relu, sin, cos, abs, sign, step

    /// The scalar functions without a parameter (all but `pow`).
    static let parameterless: [ScalarOp] = [
        .add, .subtract, .multiply, .divide, .negate, .exp, .log, .sqrt, .tanh, .sigmoid, .softplus, .relu,
        .sin, .cos, .abs, .sign, .step,
    ]

    /// The scalar form of `op`, or `nil` if it is not element-wise.
    init?(_ op: any Primitive) {
        if let power = op as? PowConstant {
            self = .pow(power.exponent)
            return
        }
        let key = AnyHashable(op)
        guard let match = Self.parameterless.first(where: { AnyHashable($0.primitive) == key }) else { return nil }
        self = match
    }

    /// The primitive this scalar function comes from (to apply the op to tensors again).
    var primitive: any Primitive {
        switch self {
        case .add: return Add()
        case .subtract: return Subtract()
        case .multiply: return Multiply()
        case .divide: return Divide()
        case .negate: return Negate()
        case .exp: return Exp()
        case .log: return Log()
        case .sqrt: return Sqrt()
        case let .pow(p): return PowConstant(exponent: p)
        case .tanh: return Tanh()
        case .sigmoid: return Sigmoid()
        case .softplus: return Softplus()
        case .relu: return Relu()
        case .sin: return Sin()
        case .cos: return Cos()
        case .abs: return Abs()
        case .sign: return PiecewiseConstant.sign
        case .step: return PiecewiseConstant.step
        }
    }
}
