// Sums of embedded parts: a reverse pass adds the adjoints of slices of one argument, each embedded
// into zeros of the argument's shape (`add(embed(a), embed(b), …)`). Written as one op, each part is
// copied or added into its own run of the output, and only the elements no part covers are zeroed:
// no zero-padded copy per part and no pass of full-length additions.

extension Program {
    /// Replaces each tree of `add`s whose leaves are contiguous `embed`s (or values of the tree's own
    /// shape) — inner adds and embeds read only inside the tree, at least one embed — by one
    /// `EmbeddedSum` of the embedded values. The parts are added in the tree's left-to-right leaf order
    /// into zeros, so a left-nested tree gives the bits of the unfused adds, any other tree differs by
    /// rounding only where parts overlap.
    public func summingEmbeds() -> Program {
        var readers = [Set<Int>](repeating: [], count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            if case let .apply(_, arguments) = instruction.operation { for a in arguments { readers[a].insert(i) } }
        }
        for output in outputs { readers[output].insert(-1) }
        // The flat element offset of each embed whose run is contiguous and that is read once.
        var embedOffsets = [Int?](repeating: nil, count: instructions.count)
        // Whether each add (of arguments of its own shape) has an embed among its tree's leaves.
        var containsEmbed = [Bool](repeating: false, count: instructions.count)
        var absorbed = [Bool](repeating: false, count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            guard case let .apply(op, arguments) = instruction.operation else { continue }
            if let embed = op as? Embed, elementCount(embed.shape, axes: 0..<embed.axis) == 1, readers[i].count == 1 {
                embedOffsets[i] = embed.start * elementCount(embed.shape, axes: (embed.axis + 1)..<embed.shape.count)
            }
            guard op is Add, arguments.allSatisfy({ instructions[$0].shape == instruction.shape }) else { continue }
            let members = arguments.filter { readers[$0].count == 1 && (embedOffsets[$0] != nil || containsEmbed[$0]) }
            containsEmbed[i] = !members.isEmpty
            for a in members { absorbed[a] = true }
        }
        var builder = ProgramBuilder()
        var renumbered = [Int](repeating: -1, count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            guard case let .apply(_, arguments) = instruction.operation else {
                renumbered[i] = builder.add(instruction, [])
                continue
            }
            if absorbed[i] { continue }
            guard containsEmbed[i] else {
                renumbered[i] = builder.add(instruction, arguments.map { renumbered[$0] })
                continue
            }
            var parts = [Int](), offsets = [Int]()
            func collect(_ value: Int) {
                if absorbed[value], case let .apply(_, inner) = instructions[value].operation {
                    if let offset = embedOffsets[value] {
                        parts.append(renumbered[inner[0]])
                        offsets.append(offset)
                    } else {
                        inner.forEach(collect)
                    }
                    return
                }
                parts.append(renumbered[value])
                offsets.append(0)
            }
            arguments.forEach(collect)
            let counts = parts.map { elementCount(builder.instructions[$0].shape) }
            let sum = EmbeddedSum(shape: instruction.shape, offsets: offsets, counts: counts)
            renumbered[i] = builder.add(.apply(sum, arguments: parts), shape: instruction.shape)
        }
        return Program(instructions: builder.instructions, outputs: outputs.map { renumbered[$0] }, inputShapes: inputShapes)
    }
}

/// `y = Σₖ embed(xₖ)`: input k, flattened, added into the run of `y` (of `shape`, flattened) of
/// `counts[k]` elements that starts at element `offsets[k]`; elements no input covers are 0 (created
/// by `Program.summingEmbeds()`).
/// Rules: the tangent of input k is embedded at its run, the adjoint of input k is its run of the
/// output's adjoint (the rules of `embed` and `add`).
public struct EmbeddedSum: Primitive {
    /// The output shape.
    public var shape: [Int]
    /// Where each input's elements start in the flattened output.
    public var offsets: [Int]
    /// How many elements each input has.
    public var counts: [Int]

    public var name: String { "embeddedSum\(offsets)" }
    public func outputShape(_ inputShapes: [[Int]]) -> [Int] {
        let total = elementCount(shape)
        engineCheck(
            !inputShapes.isEmpty && inputShapes.map { elementCount($0) } == counts && offsets.count == counts.count
                && zip(offsets, counts).allSatisfy { $0 >= 0 && $0 + $1 <= total },
            "\(AutoDiffError.invalidArgument(op: "embeddedSum", reason: "inputs of shapes \(inputShapes) do not fill runs of \(counts) elements at offsets \(offsets) of shape \(shape)"))")
        return shape
    }

    public func value(_ inputs: [Tensor]) -> Tensor {
        let count = elementCount(shape)
        let out = [Double](unsafeUninitializedCapacity: count) { output, initialized in
            withExtendedLifetime(inputs) {
                let pointers = inputs.map { input in
                    input.scalars.withUnsafeBufferPointer { $0.baseAddress ?? UnsafePointer(output.baseAddress!) }
                }
                pointers.withUnsafeBufferPointer { pointers in
                    evaluate(PrimitiveBuffers(
                        inputs: pointers, inputShapes: inputs.map(\.shape), output: output.baseAddress!, outputShape: shape,
                        workspace: output.baseAddress!))
                }
            }
            initialized = count
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }

    /// Zeros outside the first input's run, the first input copied in, every later input added into
    /// its run (each output element written once, plus once per later input covering it).
    public func evaluate(_ buffers: PrimitiveBuffers) {
        let count = elementCount(shape), first = buffers.inputCount(0), start = offsets[0]
        buffers.output.update(repeating: 0, count: start)
        (buffers.output + start + first).update(repeating: 0, count: count - start - first)
        (buffers.output + start).update(from: buffers.inputs[0], count: first)
        for k in 1..<buffers.inputs.count {
            let run = buffers.output + offsets[k]
            ArithmeticKernel.add(buffers.inputCount(k), UnsafePointer(run), 1, buffers.inputs[k], 1, run)
        }
    }

    /// Input `k` flattened and embedded at its run, in the output's shape.
    func embedded(_ x: Tensor, _ k: Int) -> Tensor {
        let count = elementCount(shape)
        return x.reshaped(to: [counts[k]]).embedded(in: [count], alongAxis: 0, at: offsets[k]).reshaped(to: shape)
    }

    public func jvp(_ tangent: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor { embedded(tangent, input) }

    public func vjp(_ adjoint: Tensor, input: Int, inputs: [Tensor], output: Tensor) -> Tensor {
        let x = inputs[input]
        return adjoint.reshaped(to: [adjoint.count]).slice(alongAxis: 0, offsets[input]..<(offsets[input] + counts[input]))
            .reshaped(to: x.shape)
    }

    public func swiftSource(_ arguments: [String]) -> String {
        let count = elementCount(shape)
        return arguments.enumerated().map { k, x in
            "\(x).reshaped(to: [\(counts[k])]).embedded(in: [\(count)], alongAxis: 0, at: \(offsets[k])).reshaped(to: \(shape))"
        }.joined(separator: " + ")
    }
}
