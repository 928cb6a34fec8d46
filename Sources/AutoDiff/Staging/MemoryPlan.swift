// The memory plan of a compiled program: where every value lives while the program runs, decided once
// from the static shapes and the liveness of the values.

/// Where each value of a program lives during a run, and how large one arena is.
///
/// - Inputs are read in place from the caller's tensors; reshapes and leading slices (`aliasOffset`)
///   point into their input's buffer; the first occurrence of each computed output is written straight into the
///   caller's output buffer.
/// - Constants are copied once into their own region of each arena, never reused.
/// - Every other value gets a slot of the arena by liveness: slots are assigned in program order, a
///   value's slot returns to the free list once its last reader (or the last reader of any reshape of
///   it) has run, and a new value takes the smallest free slot that fits, else grows the largest free
///   slot, else opens a new slot. A value's slot is taken before the slots of its dying inputs are
///   freed, so an op never writes over its own inputs. Slot sizes are exact element counts rounded up
///   to 8 doubles (64 bytes), so every buffer starts on a cache line.
struct MemoryPlan: Sendable {
    /// Where one value lives.
    enum Location: Sendable, Equatable {
        /// The program's argument k.
        case input(Int)
        /// Output k's buffer (the caller's).
        case output(Int)
        /// This many doubles from the start of the arena.
        case arena(Int)
        /// Inside the buffer of this earlier value, from this element on (a reshape, a leading slice).
        case alias(Int, offset: Int)
    }

    /// One instruction as the executor runs it.
    enum Step: Sendable {
        /// Nothing to run (an input, a constant, a reshape).
        case skip
        /// `op` applied to the values `arguments`, of shapes `argumentShapes`.
        case apply(any Primitive, arguments: [Int], argumentShapes: [[Int]])
    }

    /// The location of every value.
    let locations: [Location]
    /// What runs for every value.
    let steps: [Step]
    /// The shape of every value.
    let shapes: [[Int]]
    /// The constants as (arena offset, elements), copied into each new arena.
    let constants: [(offset: Int, scalars: [Double])]
    /// The outputs that are not written in place: (output index, value) copied after the run.
    let copiedOutputs: [(output: Int, value: Int)]
    /// Doubles per arena.
    let arenaSize: Int
    /// The largest number of inputs of one instruction.
    let maximumArity: Int
    /// The largest scratch memory of one instruction (`Primitive.workspaceCount(_:)`), in doubles.
    let workspaceCount: Int

    /// Doubles per slot granule (one 64-byte cache line).
    static let granule = 8

    init(_ program: Program) {
        let instructions = program.instructions
        let count = instructions.count
        shapes = instructions.map(\.shape)
        var locations = [Location](repeating: .arena(0), count: count)
        var steps = [Step](repeating: .skip, count: count)
        // The value whose buffer each value uses (itself unless it is a reshape).
        var root = Array(0..<count)
        var firstOutput = [Int: Int]()
        for (k, value) in program.outputs.enumerated() where firstOutput[value] == nil { firstOutput[value] = k }
        var maximumArity = 0, workspaceCount = 0
        for (i, instruction) in instructions.enumerated() {
            switch instruction.operation {
            case let .input(k): locations[i] = .input(k)
            case .constant: break
            case let .apply(op, arguments):
                maximumArity = Swift.max(maximumArity, arguments.count)
                workspaceCount = Swift.max(workspaceCount, op.workspaceCount(arguments.map { instructions[$0].shape }))
                if arguments.count == 1, let offset = op.aliasOffset([instructions[arguments[0]].shape]) {
                    root[i] = root[arguments[0]]
                    locations[i] = .alias(arguments[0], offset: offset)
                } else {
                    if let k = firstOutput[i] { locations[i] = .output(k) }
                    steps[i] = .apply(op, arguments: arguments, argumentShapes: arguments.map { instructions[$0].shape })
                }
            }
        }
        // The last instruction reading each root's buffer (through any alias); outputs live to the end.
        var lastUse = [Int](repeating: -1, count: count)
        for (i, instruction) in instructions.enumerated() {
            guard case let .apply(_, arguments) = instruction.operation else { continue }
            for a in arguments { lastUse[root[a]] = Swift.max(lastUse[root[a]], i) }
        }
        for value in program.outputs { lastUse[root[value]] = Int.max }
        var dying = [[Int]](repeating: [], count: count)
        for (value, last) in lastUse.enumerated() where root[value] == value && last >= 0 && last < Int.max {
            dying[last].append(value)
        }
        func rounded(_ n: Int) -> Int { (n + Self.granule - 1) / Self.granule * Self.granule }
        // Constants first, at fixed offsets.
        var constants = [(offset: Int, scalars: [Double])]()
        var constantSize = 0
        for (i, instruction) in instructions.enumerated() {
            guard case let .constant(tensor) = instruction.operation else { continue }
            locations[i] = .arena(constantSize)
            constants.append((constantSize, tensor.storage))
            constantSize += rounded(tensor.storage.count)
        }
        // Slots by liveness.
        var capacities = [Int](), free = [Int](), slotOf = [Int](repeating: -1, count: count)
        for i in 0..<count {
            if case .apply = steps[i], case .arena = locations[i] {
                let need = rounded(instructions[i].shape.reduce(1, *))
                let fitting = free.indices.filter { capacities[free[$0]] >= need }
                    .min { capacities[free[$0]] < capacities[free[$1]] }
                let slot: Int
                if let fitting {
                    slot = free.remove(at: fitting)
                } else if let largest = free.indices.max(by: { capacities[free[$0]] < capacities[free[$1]] }) {
                    slot = free.remove(at: largest)
                    capacities[slot] = need
                } else {
                    capacities.append(need)
                    slot = capacities.count - 1
                }
                slotOf[i] = slot
                // A value nobody reads gives its slot back at once (after being written).
                if lastUse[i] < 0 { free.append(slot) }
            }
            for value in dying[i] where slotOf[value] >= 0 { free.append(slotOf[value]) }
        }
        var slotOffsets = [Int](), offset = constantSize
        for capacity in capacities {
            slotOffsets.append(offset)
            offset += capacity
        }
        for i in 0..<count where slotOf[i] >= 0 { locations[i] = .arena(slotOffsets[slotOf[i]]) }
        var copiedOutputs = [(output: Int, value: Int)]()
        for (k, value) in program.outputs.enumerated() where locations[value] != .output(k) {
            copiedOutputs.append((k, value))
        }
        self.locations = locations
        self.steps = steps
        self.constants = constants
        self.copiedOutputs = copiedOutputs
        self.arenaSize = offset
        self.maximumArity = maximumArity
        self.workspaceCount = workspaceCount
    }
}
