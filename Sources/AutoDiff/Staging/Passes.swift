// Optimization passes on programs. Each pass returns a new program computing the same outputs (to
// rounding) from the same arguments; `optimized()` runs them to a fixed point.

extension Program {
    /// The program after constant folding, algebraic identities, the rewrite of `Aᵀ(α(A v − b))` into
    /// one fused `normalProduct`, common-subexpression elimination and dead-code elimination, repeated
    /// until the program stops shrinking (`simplified()`), then sums of embedded parts as one op and
    /// element-wise fusion.
    /// - `usingGramMatrices()`: a `normalProduct` of a constant, tall A becomes `G v − c`, `G = AᵀA`.
    public func optimized() -> Program {
        simplified().summingEmbeds().fusingElementwise().eliminatingDeadCode()
    }

    /// The fixed-point passes of `optimized()`, without the embedded sums and element-wise fusion: the
    /// form to batch (`vmap`) before fusing, so that batching sees the Gram-matrix products rather than
    /// the raw matrix.
    public func simplified() -> Program {
        var program = self
        for _ in 0..<8 {
            let before = program.instructions.count
            program = program.foldingConstants().simplifyingIdentities().fusingNormalProducts()
                .usingGramMatrices().eliminatingCommonSubexpressions().eliminatingDeadCode()
            if program.instructions.count == before { break }
        }
        return program
    }

    /// Removes every value no output depends on (arguments are kept: they are the program's signature).
    public func eliminatingDeadCode() -> Program {
        var live = [Bool](repeating: false, count: instructions.count)
        for output in outputs { live[output] = true }
        for i in instructions.indices.reversed() where live[i] {
            if case let .apply(_, arguments) = instructions[i].operation { for a in arguments { live[a] = true } }
        }
        return rewritten { i, instruction, arguments, builder in
            if case .input = instruction.operation { return builder.add(instruction, arguments) }
            return live[i] ? builder.add(instruction, arguments) : -1
        }
    }

    /// Replaces a repeated application (same primitive, equal attributes, same arguments — in either
    /// order for `add` and `multiply`) by its first occurrence, and a repeated small constant (≤ 64 elements) by its first copy.
    public func eliminatingCommonSubexpressions() -> Program {
        struct Application: Hashable {
            var op: AnyHashable
            var arguments: [Int]
        }
        struct Constant: Hashable {
            var shape: [Int]
            var scalars: [Double]
        }
        var applications = [Application: Int](), constants = [Constant: Int]()
        return rewritten { _, instruction, arguments, builder in
            switch instruction.operation {
            case let .apply(op, _):
                // `a + b` and `b + a` (and `a·b`, `b·a`) are one value: IEEE addition and multiplication commute.
                let commutes = op is Add || op is Multiply
                let key = Application(op: AnyHashable(op), arguments: commutes ? arguments.sorted() : arguments)
                if let first = applications[key] { return first }
                let index = builder.add(instruction, arguments)
                applications[key] = index
                return index
            case let .constant(tensor) where tensor.count <= 64:
                let key = Constant(shape: tensor.shape, scalars: tensor.scalars)
                if let first = constants[key] { return first }
                let index = builder.add(instruction, arguments)
                constants[key] = index
                return index
            default:
                return builder.add(instruction, arguments)
            }
        }
    }

    /// Evaluates every application whose arguments are all constants, once, into a constant.
    public func foldingConstants() -> Program {
        rewritten { _, instruction, arguments, builder in
            guard case let .apply(op, _) = instruction.operation else { return builder.add(instruction, arguments) }
            return builder.addFolding(op, arguments, shape: instruction.shape)
        }
    }

    /// Rewrites an instruction list: `rule(i, instruction, arguments, builder)` adds the new form of
    /// instruction `i` (its arguments already renumbered) and returns its new index (or `-1` when it is
    /// dropped, which is only valid for values nothing reads).
    func rewritten(
        _ rule: (Int, Instruction, [Int], inout ProgramBuilder) -> Int
    ) -> Program {
        var builder = ProgramBuilder()
        var renumbered = [Int](repeating: -1, count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            var arguments = [Int]()
            if case let .apply(_, old) = instruction.operation { arguments = old.map { renumbered[$0] } }
            renumbered[i] = rule(i, instruction, arguments, &builder)
        }
        return Program(instructions: builder.instructions, outputs: outputs.map { renumbered[$0] }, inputShapes: inputShapes)
    }
}

/// The instruction list a pass builds.
struct ProgramBuilder {
    var instructions = [Program.Instruction]()

    /// Appends `operation` of `shape`; returns its index.
    mutating func add(_ operation: Program.Operation, shape: [Int]) -> Int {
        instructions.append(Program.Instruction(operation: operation, shape: shape))
        return instructions.count - 1
    }

    /// Appends `instruction` with its arguments replaced by `arguments` (ignored unless it applies an op).
    mutating func add(_ instruction: Program.Instruction, _ arguments: [Int]) -> Int {
        guard case let .apply(op, _) = instruction.operation else {
            return add(instruction.operation, shape: instruction.shape)
        }
        return add(.apply(op, arguments: arguments), shape: instruction.shape)
    }

    /// The tensor of value `index` if it is a constant.
    func constant(_ index: Int) -> Tensor? {
        if case let .constant(tensor) = instructions[index].operation { return tensor }
        return nil
    }

    /// The op and arguments of value `index` if it applies a primitive.
    func application(_ index: Int) -> (op: any Primitive, arguments: [Int])? {
        if case let .apply(op, arguments) = instructions[index].operation { return (op, arguments) }
        return nil
    }

    /// Whether value `index` is a constant whose every element is `value`.
    func isConstant(_ index: Int, equalTo value: Double) -> Bool {
        constant(index)?.scalars.allSatisfy { $0 == value } ?? false
    }
}
