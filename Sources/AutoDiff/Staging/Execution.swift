// Running a program: the compiled executor (Executor.swift) on constant arguments, and an interpreter
// over the instruction list that applies each primitive through the engine on traced arguments (so a
// program run inside `gradient`, `jvp`, … is differentiated like any function, and a program run while
// staging is recorded into the new program).

/// The address given for an empty tensor's elements (never read or written: zero elements).
nonisolated(unsafe) private let emptyBuffer = UnsafeMutablePointer<Double>.allocate(capacity: MemoryPlan.granule)

extension Program {
    /// The values of every output at `arguments`.
    ///
    /// On constant arguments the compiled program runs: each op writes into a buffer of the program's
    /// memory plan (`MemoryPlan`), reused from call to call, so the only allocations are the returned
    /// tensors (`outputs(at:into:)` avoids those too). Inside `gradient`, `jvp`, `stage`, … (traced
    /// arguments) the program is interpreted through the engine instead, so it is differentiated or
    /// recorded like any function.
    ///
    /// - Precondition: one argument per input, each of the shape the program was staged for; a program
    ///   is specialised to its shapes, so other shapes stop with a message (stage again for them).
    public func outputs(at arguments: [Tensor]) -> [Tensor] {
        checkArguments(arguments)
        if Self.anyTraced(arguments) { return interpretedOutputs(at: arguments) }
        var results = outputs.map { value in
            let count = instructions[value].shape.reduce(1, *)
            let scalars = [Double](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
            return Tensor(shape: instructions[value].shape, scalars: scalars, trace: nil)
        }
        execute(arguments, into: &results)
        return results
    }

    /// Writes the values of every output at `arguments` into `results`, reusing their storage: a loop
    /// that calls this with the same `results` allocates nothing at all once the program has run once
    /// (the memory plan and one arena per concurrent call are kept by the program).
    ///
    /// `results` is replaced by fresh tensors when it does not hold one tensor of each output's shape
    /// (pass `[]` the first time). A result whose storage is shared with another tensor is copied
    /// before being written (value semantics), which allocates; keep the results unshared to avoid it.
    ///
    /// - Precondition: the arguments match the input shapes and are constants (not inside `gradient`,
    ///   `jvp` or `stage`: call `outputs(at:)` there).
    public func outputs(at arguments: [Tensor], into results: inout [Tensor]) {
        checkArguments(arguments)
        engineCheck(
            !Self.anyTraced(arguments),
            "\(AutoDiffError.invalidArgument(op: "Program.outputs(at:into:)", reason: "the arguments are being differentiated or staged; call outputs(at:) inside gradient, jvp or stage"))")
        var fits = results.count == outputs.count, k = 0
        while fits && k < results.count {
            fits = results[k].shape == instructions[outputs[k]].shape
            k += 1
        }
        if !fits {
            results = outputs.map { Tensor(zeros: instructions[$0].shape) }
        }
        execute(arguments, into: &results)
    }

    /// Stops with a message unless `arguments` has one tensor of each input shape.
    private func checkArguments(_ arguments: [Tensor]) {
        engineCheck(
            arguments.count == inputShapes.count,
            "\(AutoDiffError.invalidArgument(op: "Program", reason: "the program takes \(inputShapes.count) arguments, \(arguments.count) were given"))")
        var k = 0
        while k < arguments.count {
            engineCheck(
                arguments[k].shape == inputShapes[k],
                "\(AutoDiffError.shapeMismatch(op: "Program (argument \(k))", lhs: arguments[k].shape, rhs: inputShapes[k], reason: "the program was staged for the second shape; stage the function again for the first"))")
            k += 1
        }
    }

    /// Whether any argument is traced (differentiated or staged); a plain loop, like the rest of the
    /// per-call path.
    private static func anyTraced(_ arguments: [Tensor]) -> Bool {
        var k = 0
        while k < arguments.count {
            if arguments[k].activeTrace != nil { return true }
            k += 1
        }
        return false
    }

    /// Runs the compiled program with the elements of `arguments` pinned in place and the results'
    /// storage as the outputs' buffers (pointer tables on the stack: nothing on the heap).
    private func execute(_ arguments: [Tensor], into results: inout [Tensor]) {
        withUnsafeTemporaryAllocation(of: UnsafePointer<Double>.self, capacity: Swift.max(1, arguments.count)) { inputs in
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Double>.self, capacity: Swift.max(1, results.count)) { outputs in
                results.withUnsafeMutableBufferPointer { tensors in
                    Self.pin(arguments, from: 0, into: inputs) {
                        Self.pin(tensors, from: 0, into: outputs) {
                            executor.run(self, arguments: UnsafeBufferPointer(inputs), outputs: UnsafeBufferPointer(outputs))
                        }
                    }
                }
            }
        }
    }

    /// Stores the first element of each of `tensors[k...]` in `pointers` and runs `body` while all are pinned.
    private static func pin(
        _ tensors: [Tensor], from k: Int, into pointers: UnsafeMutableBufferPointer<UnsafePointer<Double>>,
        _ body: () -> Void
    ) {
        guard k < tensors.count else { return body() }
        tensors[k].storage.withUnsafeBufferPointer { elements in
            pointers[k] = elements.baseAddress ?? UnsafePointer(emptyBuffer)
            pin(tensors, from: k + 1, into: pointers, body)
        }
    }

    /// Stores the first element of each of `tensors[k...]` (made unique, constants) in `pointers` and runs
    /// `body` while all are pinned for writing.
    private static func pin(
        _ tensors: UnsafeMutableBufferPointer<Tensor>, from k: Int,
        into pointers: UnsafeMutableBufferPointer<UnsafeMutablePointer<Double>>, _ body: () -> Void
    ) {
        guard k < tensors.count else { return body() }
        tensors[k].trace = nil
        tensors[k].storage.withUnsafeMutableBufferPointer { elements in
            pointers[k] = elements.baseAddress ?? emptyBuffer
            pin(tensors, from: k + 1, into: pointers, body)
        }
    }

    /// The values of every output at `arguments`, by applying each primitive through the engine (what
    /// runs while the arguments are traced), releasing every value after its last use.
    func interpretedOutputs(at arguments: [Tensor]) -> [Tensor] {
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
