// Running a program: an interpreter over the instruction list that applies each primitive through the
// engine (so a program run inside `gradient`, `jvp`, … is differentiated like any function, and a
// program run while staging is recorded into the new program), releasing every value after its last use.

extension Program {
    /// The values of every output at `arguments`.
    ///
    /// - Precondition: one argument per input, each of the shape the program was staged for; a program
    ///   is specialised to its shapes, so other shapes stop with a message (stage again for them).
    public func outputs(at arguments: [Tensor]) -> [Tensor] {
        engineCheck(
            arguments.count == inputShapes.count,
            "\(AutoDiffError.invalidArgument(op: "Program", reason: "the program takes \(inputShapes.count) arguments, \(arguments.count) were given"))")
        for (k, argument) in arguments.enumerated() {
            engineCheck(
                argument.shape == inputShapes[k],
                "\(AutoDiffError.shapeMismatch(op: "Program (argument \(k))", lhs: argument.shape, rhs: inputShapes[k], reason: "the program was staged for the second shape; stage the function again for the first"))")
        }
        var values = [Tensor?](repeating: nil, count: instructions.count)
        let schedule = self.schedule
        for (i, step) in schedule.steps.enumerated() {
            switch step {
            case let .input(k):
                values[i] = arguments[k]
            case let .constant(tensor):
                values[i] = tensor
            case let .unary(op, x):
                values[i] = op(values[x]!)
            case let .binary(op, a, b):
                values[i] = op(values[a]!, values[b]!)
            case let .nary(op, arguments):
                values[i] = op.apply(arguments.map { values[$0]! })
            }
            for dead in schedule.releases[i] { values[dead] = nil }
        }
        return outputs.map { values[$0]! }
    }

    /// The value of a program of one output.
    ///
    /// - Precondition: the program has one output; the arguments match its input shapes.
    public func callAsFunction(_ arguments: Tensor...) -> Tensor {
        engineCheck(
            outputs.count == 1,
            "\(AutoDiffError.invalidArgument(op: "Program", reason: "the program has \(outputs.count) outputs; call outputs(at:)"))")
        return self.outputs(at: arguments)[0]
    }
}

/// How a program runs: each instruction with its op opened to its arity (so running needs no dynamic
/// cast and no argument array for one or two inputs), and the values that die after each instruction.
struct Schedule: Sendable {
    enum Step: Sendable {
        case input(Int)
        case constant(Tensor)
        case unary(any UnaryPrimitive, Int)
        case binary(any BinaryPrimitive, Int, Int)
        case nary(any Primitive, [Int])
    }

    let steps: [Step]

    /// Applies `op` to `arguments` through the engine, opened to its arity.
    static func apply(_ op: any Primitive, _ arguments: [Tensor]) -> Tensor {
        if arguments.count == 1, let unary = op as? any UnaryPrimitive { return unary(arguments[0]) }
        if arguments.count == 2, let binary = op as? any BinaryPrimitive { return binary(arguments[0], arguments[1]) }
        return op.apply(arguments)
    }
    /// `releases[i]`: values whose last reader is instruction `i` (never an output).
    let releases: [[Int]]

    init(_ instructions: [Program.Instruction], outputs: [Int]) {
        steps = instructions.map { instruction in
            switch instruction.operation {
            case let .input(k): return .input(k)
            case let .constant(t): return .constant(t)
            case let .apply(op, arguments):
                if arguments.count == 1, let unary = op as? any UnaryPrimitive { return .unary(unary, arguments[0]) }
                if arguments.count == 2, let binary = op as? any BinaryPrimitive {
                    return .binary(binary, arguments[0], arguments[1])
                }
                return .nary(op, arguments)
            }
        }
        var lastUse = [Int](repeating: -1, count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            if case let .apply(_, arguments) = instruction.operation { for a in arguments { lastUse[a] = i } }
        }
        for output in outputs { lastUse[output] = Int.max }
        var releases = [[Int]](repeating: [], count: instructions.count)
        for (value, last) in lastUse.enumerated() where last >= 0 && last < Int.max { releases[last].append(value) }
        self.releases = releases
    }
}
