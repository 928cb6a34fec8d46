/// A staged function: a typed SSA list of primitive applications with static shapes.
///
/// Value `i` of a program is the result of `instructions[i]`, which is one of
/// - `.input(k)`: the program's k-th argument;
/// - `.constant(t)`: a tensor captured while staging (a constant of the closure, or a constant that an
///   op or a derivative rule created, such as the seed `1` of a gradient);
/// - `.apply(op, arguments)`: the primitive `op` applied to earlier values `arguments`.
///
/// Every value has a static `shape`, computed while staging by the ops' shape rules. `outputs` lists
/// the values the program returns. A program is a plain value: it can be run (`callAsFunction`,
/// `outputs(at:)`, `scan(from:parameters:steps:)` for a step replayed T times), transformed into
/// another program (`gradient()`, `vjp()`, `jvp()`, `hvp(mode:)`, `mixedHVP()`), optimized
/// (`optimized()` and the single passes), and printed as Swift (`swiftSource(functionName:)`).
///
/// The IR is deliberately small: there are no control-flow instructions (a loop is a staged step
/// replayed by `scan`), no in-place updates, and every op is a `Primitive` value, so a pass matches
/// ops by type (`op is Transpose`) and compares them by `Hashable` equality.
///
/// Programs are obtained with `stage(shapes:_:)`.
public struct Program: Sendable {
    /// What produces one value of the program.
    public enum Operation: Sendable {
        /// The program's argument of that position.
        case input(Int)
        /// A constant tensor.
        case constant(Tensor)
        /// A primitive applied to earlier values (by their index).
        case apply(any Primitive, arguments: [Int])
    }

    /// One SSA value: its operation and its static shape.
    public struct Instruction: Sendable {
        /// What produces the value.
        public var operation: Operation
        /// The value's shape.
        public var shape: [Int]
    }

    /// The values in order; instruction `i` only reads values before `i`.
    public let instructions: [Instruction]
    /// The values returned, in order.
    public let outputs: [Int]
    /// The shape of each argument.
    public let inputShapes: [[Int]]
    /// How the program is interpreted (derived from the instructions).
    let schedule: Schedule
    /// How the program runs compiled: its memory plan and arenas, shared by every copy of the program.
    let executor = Executor()

    /// A program of `instructions` returning `outputs`, for arguments of `inputShapes`.
    init(instructions: [Instruction], outputs: [Int], inputShapes: [[Int]]) {
        self.instructions = instructions
        self.outputs = outputs
        self.inputShapes = inputShapes
        schedule = Schedule(instructions, outputs: outputs)
    }

    /// The shapes of the returned values.
    public var outputShapes: [[Int]] { outputs.map { instructions[$0].shape } }

    /// How many values apply a primitive (the size of the program without inputs and constants).
    public var applicationCount: Int {
        instructions.reduce(0) { count, instruction in
            if case .apply = instruction.operation { return count + 1 }
            return count
        }
    }
}

extension Program: CustomStringConvertible {
    /// One line per value, `%i: shape = op(%a, %b)`, and the returned values.
    public var description: String {
        var lines = [String]()
        for (i, instruction) in instructions.enumerated() {
            let rhs: String
            switch instruction.operation {
            case let .input(k): rhs = "input \(k)"
            case let .constant(t): rhs = t.count <= 4 ? "constant \(t.scalars)" : "constant (\(t.count) elements)"
            case let .apply(op, arguments): rhs = "\(op.name)(\(arguments.map { "%\($0)" }.joined(separator: ", ")))"
            }
            lines.append("%\(i): \(instruction.shape) = \(rhs)")
        }
        lines.append("return \(outputs.map { "%\($0)" }.joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }
}
