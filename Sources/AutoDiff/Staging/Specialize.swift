// Partial evaluation: a program with some arguments fixed to constant tensors becomes a program of the
// remaining arguments, with everything that depends only on the fixed ones computed once.

extension Program {
    /// The program of the arguments not in `binding`, with argument `k` replaced by the constant
    /// `binding[k]` for every bound `k` (partial evaluation, JAX's `partial` + constant folding):
    ///
    ///     p.specialized(binding: [0: a, 1: b])(v) == p(a, b, v)      (to rounding: the same ops in the same order)
    ///
    /// Every application whose arguments are all constants after the binding is evaluated once, here,
    /// through the engine (`Primitive.value`), and what no output reads any more is dropped; the
    /// remaining arguments keep their order and are renumbered `0, 1, …`; constants that share their
    /// storage and shape become one. In a fused element-wise tree
    /// (`fusingElementwise()`) that reads both constants and other values, the steps of constants alone
    /// are evaluated and the tree keeps the others, so `σ(x) ⊙ (A v)` keeps only the product when x is
    /// bound. Then a product `Xᵀ(D ⊙ (X v))` whose `X` and `D` became constants is one weighted Gram
    /// matrix `H = Xᵀ diag(D) X` times `v` (`usingWeightedGramMatrices()`, when `d < 2n`). Nothing else is
    /// rewritten (no `optimized()` pipeline), so specializing costs about one interpreted run of the
    /// bound part, plus `n d²` per weighted Gram matrix formed.
    ///
    /// Use it when a program is replayed many times with some arguments fixed: a Hessian-vector product
    /// `(x, y, v) ↦ ∇²ᵧᵧf(x, y) v` inside a linear solve at one point `(x, y)` keeps only the ops that
    /// touch `v` (for a weighted least-squares loss, `Aᵀ(d ⊙ (A v)) + c v` becomes `H v + c v` with `H`,
    /// `c` computed once).
    ///
    /// - Precondition: every key is an argument position and its tensor has that argument's shape and
    ///   is a constant (not being differentiated or staged: see `canBind(_:)`).
    public func specialized(binding: [Int: Tensor]) -> Program {
        for (k, tensor) in binding {
            engineCheck(
                inputShapes.indices.contains(k),
                "\(AutoDiffError.invalidArgument(op: "Program.specialized(binding:)", reason: "argument \(k) is bound but the program takes \(inputShapes.count) arguments"))")
            engineCheck(
                tensor.shape == inputShapes[k],
                "\(AutoDiffError.shapeMismatch(op: "Program.specialized(binding:) (argument \(k))", lhs: tensor.shape, rhs: inputShapes[k], reason: "the bound tensor must have the argument's shape"))")
            engineCheck(
                tensor.activeTrace == nil,
                "\(AutoDiffError.invalidArgument(op: "Program.specialized(binding:)", reason: "argument \(k) is bound to a tensor being differentiated or staged; bind constants only (Program.canBind)"))")
        }
        var position = [Int](repeating: -1, count: inputShapes.count), remainingShapes = [[Int]]()
        for k in inputShapes.indices where binding[k] == nil {
            position[k] = remainingShapes.count
            remainingShapes.append(inputShapes[k])
        }
        var builder = ProgramBuilder()
        var renumbered = [Int](repeating: -1, count: instructions.count), sameStorage = [ConstantStorage: Int]()
        for (i, instruction) in instructions.enumerated() {
            switch instruction.operation {
            case let .input(k):
                renumbered[i] = builder.add(binding[k].map { .constant($0) } ?? .input(position[k]), shape: instruction.shape)
            case let .constant(tensor):
                // Staging captures a matrix once per use (X and Xᵀ of one X): one copy of the same storage.
                let key = ConstantStorage(tensor)
                renumbered[i] = sameStorage[key] ?? builder.add(instruction, [])
                sameStorage[key] = renumbered[i]
            case let .apply(op, old):
                let arguments = old.map { renumbered[$0] }
                let constants = arguments.filter { builder.constant($0) != nil }.count
                if let tree = op as? FusedElementwise, constants > 0, constants < arguments.count {
                    renumbered[i] = builder.addFolding(tree, arguments, shape: instruction.shape)
                } else {
                    renumbered[i] = builder.addFolding(op, arguments, shape: instruction.shape)
                }
            }
        }
        return Program(instructions: builder.instructions, outputs: outputs.map { renumbered[$0] }, inputShapes: remainingShapes)
            .usingWeightedGramMatrices()
    }

    /// Whether `tensors` can be bound by `specialized(binding:)`: none is being differentiated or staged
    /// (a traced value has no numbers to fold yet).
    public static func canBind(_ tensors: [Tensor]) -> Bool {
        tensors.allSatisfy { $0.activeTrace == nil }
    }
}

/// A constant's identity by storage: equal keys are the very same elements in the same shape.
private struct ConstantStorage: Hashable {
    let address: UnsafeRawPointer?
    let shape: [Int]

    init(_ tensor: Tensor) {
        address = tensor.storage.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        shape = tensor.shape
    }
}

extension ProgramBuilder {
    /// Adds `op` applied to `arguments`, or its value as a constant when every argument is a constant.
    mutating func addFolding(_ op: any Primitive, _ arguments: [Int], shape: [Int]) -> Int {
        let values = arguments.compactMap { constant($0) }
        guard values.count == arguments.count else { return add(.apply(op, arguments: arguments), shape: shape) }
        return add(.constant(op.value(values)), shape: shape)
    }

    /// Adds `tree` applied to `arguments` (some of them constants) as a smaller tree: every step whose
    /// operands are all constants is evaluated once (`Primitive.value` of the step's op, the kernel the
    /// fused pass runs), its value becomes an input of the new tree, and the other steps keep their
    /// order (and the tree its sum, if it has one). Returns the index of the new tree's value.
    mutating func addFolding(_ tree: FusedElementwise, _ arguments: [Int], shape: [Int]) -> Int {
        var values = [Tensor?](), constantIndices = [Int: Int](), newIndices = [Int: Int]()
        var steps = [FusedElementwise.Step](), inputs = [Int]()
        func input(_ value: Int) -> FusedElementwise.Operand {
            if let k = inputs.firstIndex(of: value) { return .input(k) }
            inputs.append(value)
            return .input(inputs.count - 1)
        }
        for (s, step) in tree.steps.enumerated() {
            let constants = step.operands.compactMap { operand -> Tensor? in
                switch operand {
                case let .input(k): return constant(arguments[k])
                case let .step(j): return values[j]
                }
            }
            if constants.count == step.operands.count {
                values.append(step.op.primitive.value(constants))
                continue
            }
            values.append(nil)
            let operands = step.operands.map { operand -> FusedElementwise.Operand in
                switch operand {
                case let .input(k): return input(arguments[k])
                case let .step(j):
                    if let index = newIndices[j] { return .step(index) }
                    let folded = constantIndices[j] ?? add(.constant(values[j]!), shape: values[j]!.shape)
                    constantIndices[j] = folded
                    return input(folded)
                }
            }
            steps.append(FusedElementwise.Step(op: step.op, operands: operands))
            newIndices[s] = steps.count - 1
        }
        let smaller = FusedElementwise(steps: steps, shape: tree.shape, sumShape: tree.sumShape)
        return add(.apply(smaller, arguments: inputs), shape: shape)
    }
}

extension Program {
    /// The elements the applications read in one run, `Σ` over applications of their arguments' element
    /// counts: a measure of a run's memory traffic, to compare a program with its specialization.
    public var elementsRead: Int {
        instructions.reduce(0) { total, instruction in
            guard case let .apply(_, arguments) = instruction.operation else { return total }
            return total + arguments.reduce(0) { $0 + instructions[$1].shape.reduce(1, *) }
        }
    }

    /// The elements of the program's constants: what its memory plan copies in once, for each new
    /// program (`MemoryPlan`), at the first run.
    public var constantElements: Int {
        instructions.reduce(0) { total, instruction in
            guard case .constant = instruction.operation else { return total }
            return total + instruction.shape.reduce(1, *)
        }
    }
}
