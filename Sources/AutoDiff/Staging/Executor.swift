import Synchronization

// The executor of a compiled program: the memory plan, computed once, and a pool of arenas (one per
// concurrent call), each allocated once and reused, so a steady-state call allocates nothing.

/// The run-time state a program carries: its memory plan (built at the first call) and the arenas of
/// finished calls, waiting to be reused. Each call takes an arena from the pool (or allocates one) and
/// puts it back, so calls from several threads at once never share a buffer.
final class Executor: Sendable {
    /// The plan (once built) and the idle arenas.
    private struct State {
        var plan: MemoryPlan?
        var idle: [Arena] = []
    }

    /// Idle arenas kept at most (enough for every core to run the program at once).
    static let poolLimit = Swift.max(2, MatmulKernel.cores)

    private let state = Mutex(State())

    init() {}

    /// Runs `program` with the argument pointers `arguments` and writes output k into `outputs[k]`.
    func run(
        _ program: Program, arguments: UnsafeBufferPointer<UnsafePointer<Double>>,
        outputs: UnsafeBufferPointer<UnsafeMutablePointer<Double>>
    ) {
        let (plan, reused) = state.withLock { state -> (MemoryPlan, Arena?) in
            if state.plan == nil {
                state.plan = MemoryPlan(program)
                state.idle.reserveCapacity(Self.poolLimit)
            }
            return (state.plan!, state.idle.popLast())
        }
        let arena = reused ?? Arena(plan)
        arena.run(plan, arguments: arguments, outputs: outputs)
        state.withLock { state in
            if state.idle.count < Self.poolLimit { state.idle.append(arena) }
        }
    }
}

/// The buffers of one call in flight: the plan's arena (constants copied in once), the table of every
/// value's first element, and room for one instruction's argument pointers.
///
/// Sendability: an arena is used by one call at a time (it leaves the pool while a call runs), so it
/// only ever crosses threads while idle inside the pool's lock.
final class Arena: @unchecked Sendable {
    /// The doubles of the plan's arena.
    let storage: UnsafeMutablePointer<Double>
    /// The first element of every value during the current call.
    let table: UnsafeMutablePointer<UnsafeMutablePointer<Double>>
    /// One instruction's argument pointers.
    let arguments: UnsafeMutablePointer<UnsafePointer<Double>>
    /// The scratch memory of the instruction running (`Primitive.workspaceCount(_:)`).
    let workspace: UnsafeMutablePointer<Double>
    private let valueCount: Int

    init(_ plan: MemoryPlan) {
        valueCount = plan.locations.count
        let storage = UnsafeMutableRawPointer.allocate(
            byteCount: Swift.max(1, plan.arenaSize) * MemoryLayout<Double>.stride, alignment: 64
        ).bindMemory(to: Double.self, capacity: Swift.max(1, plan.arenaSize))
        for constant in plan.constants {
            constant.scalars.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { (storage + constant.offset).initialize(from: base, count: source.count) }
            }
        }
        self.storage = storage
        table = .allocate(capacity: Swift.max(1, valueCount))
        table.initialize(repeating: storage, count: Swift.max(1, valueCount))
        for (i, location) in plan.locations.enumerated() {
            if case let .arena(offset) = location { table[i] = storage + offset }
        }
        arguments = .allocate(capacity: Swift.max(1, plan.maximumArity))
        workspace = UnsafeMutableRawPointer.allocate(
            byteCount: Swift.max(1, plan.workspaceCount) * MemoryLayout<Double>.stride, alignment: 64
        ).bindMemory(to: Double.self, capacity: Swift.max(1, plan.workspaceCount))
    }

    deinit {
        storage.deallocate()
        table.deallocate()
        arguments.deallocate()
        workspace.deallocate()
    }

    /// Points the table at this call's arguments and outputs, runs every instruction into its buffer,
    /// and copies the outputs that were not written in place.
    func run(
        _ plan: MemoryPlan, arguments inputs: UnsafeBufferPointer<UnsafePointer<Double>>,
        outputs: UnsafeBufferPointer<UnsafeMutablePointer<Double>>
    ) {
        for i in 0..<valueCount {
            switch plan.locations[i] {
            case let .input(k): table[i] = UnsafeMutablePointer(mutating: inputs[k])
            case let .output(k): table[i] = outputs[k]
            case let .alias(value, offset): table[i] = table[value] + offset
            case .arena: break
            }
        }
        for i in 0..<valueCount {
            guard case let .apply(op, argumentValues, argumentShapes) = plan.steps[i] else { continue }
            var k = 0
            while k < argumentValues.count {
                arguments[k] = UnsafePointer(table[argumentValues[k]])
                k += 1
            }
            op.evaluate(PrimitiveBuffers(
                inputs: UnsafeBufferPointer(start: arguments, count: argumentValues.count), inputShapes: argumentShapes,
                output: table[i], outputShape: plan.shapes[i], workspace: workspace))
        }
        var copy = 0
        while copy < plan.copiedOutputs.count {
            let (output, value) = plan.copiedOutputs[copy]
            copy += 1
            outputs[output].update(from: table[value], count: elementCount(plan.shapes[value]))
        }
    }
}
