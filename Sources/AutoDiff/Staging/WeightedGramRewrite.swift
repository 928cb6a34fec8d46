// The weighted Gram-matrix rewrite: `Xᵀ(D ⊙ (X v))` with X and D constants → `H v`, H = Xᵀ diag(D) X
// formed once, when the program is rewritten.

extension Program {
    /// Replaces every `Xᵀ(D ⊙ (X v))` whose matrix `X` `[n, d]` and weights `D` `[n]` are constants of
    /// the program, with `d < 2n`, by
    ///
    ///     Xᵀ(D ⊙ (X v)) = H v,    H = Xᵀ diag(D) X  [d, d],
    ///
    /// with `H` a new constant computed here, once. This is the curvature term of a weighted loss
    /// `Σᵢ ℓᵢ(Xᵢ·w)`: its Hessian-vector product is `Xᵀ(ℓ'' ⊙ (X v))` (Liu et al. 2021 (survey),
    /// eq. 31: the implicit hypergradient's linear system in `∇²ᵧᵧf`), and once `(x, w*)` is bound
    /// (`specialized(binding:)`, which runs this pass) `D = ℓ''` is constant: P3's lower HVP at fixed
    /// `(x, w*)`, `D = σ(x) ⊙ p(1 − p) / n`.
    ///
    /// `D ⊙` stands for what the derivative programs make of the weighting: a chain of reshapes,
    /// negations, products and quotients by constants (one element, as a scale `1/n`, also written as a
    /// `matmul` with a `[1, 1]` constant, or `n` elements), and fused element-wise trees
    /// (`fusingElementwise()`) linear in the chain's value whose other inputs are constants. `D` is the
    /// product of those factors, a fused tree's factor being its value at a vector of ones. `Xᵀ` is
    /// `matmul(X, ·, transposeA: true)` or, in the row layout, `matmul(·ᵀ, X)`; the two `X` agree by
    /// value (`matrixIdentities()`).
    ///
    /// Cost model (the rule `d < 2n`): the chain reads `X` twice per call (`2 n d` multiply–adds), `H v`
    /// reads `d²` numbers (`d²` multiply–adds), fewer exactly when `d² < 2 n d`. A chain whose values
    /// (`X v` and what follows) are read elsewhere, or are outputs, is left alone, since `X v` would
    /// still be computed. Forming `H` costs about `n d²` once: the symmetric Gram kernel on the rows of
    /// `X` scaled by `√Dᵢ` when every `Dᵢ ≥ 0`, else one GEMM `Xᵀ (D ⊙ X)`. That one-off cost is
    /// repaid after about `n d² / (2 (2 n d − d²))` calls (`d/4` for `d ≪ n`: 13 on P3's 500 × 50), so a
    /// solve of fewer products gains nothing (P3's CG-10 takes as long as without the rewrite).
    ///
    /// The result equals the chain up to rounding only (the same products summed in another order):
    /// relative differences below 1e-12 on P3 (`WeightedGramTests`).
    public func usingWeightedGramMatrices() -> Program {
        let program = eliminatingDeadCode(), matrices = program.matrixIdentities()
        let matches = program.containedMatches { root in
            WeightedGramMatch(root: root, in: program.instructions, matrices: matrices).map { ($0, $0.interior) }
        }
        guard !matches.isEmpty else { return program }
        var renumbered = [Int](repeating: -1, count: program.instructions.count)
        return program.rewritten { i, instruction, arguments, builder in
            var index: Int
            if let match = matches[i] {
                let columns = match.gram.shape[0]
                let gram = builder.add(.constant(match.gram), shape: [columns, columns])
                index = builder.add(
                    .apply(Matmul(transposeA: false, transposeB: false), arguments: [gram, renumbered[match.v]]),
                    shape: [columns, 1])
                if instruction.shape != [columns, 1] {
                    index = builder.add(.apply(Reshape(shape: instruction.shape), arguments: [index]), shape: instruction.shape)
                }
            } else {
                index = builder.add(instruction, arguments)
            }
            renumbered[i] = index
            return index
        }.eliminatingDeadCode()
    }
}

/// One occurrence of `Xᵀ(D ⊙ (X v))` with constant `X` and `D` in an instruction list.
struct WeightedGramMatch {
    /// The direction `v` `[d, 1]` (an index into the instruction list).
    let v: Int
    /// `H = Xᵀ diag(D) X` `[d, d]`.
    let gram: Tensor
    /// The values computed only on the way to the root: `X v`, its reshapes and weighted copies.
    let interior: Set<Int>

    /// The match rooted at `root`, or `nil` when `root` is not `Xᵀ(D ⊙ (X v))` with `X` and `D`
    /// constants and `d < 2n`.
    init?(root: Int, in instructions: [Program.Instruction], matrices: [Int]) {
        guard case let .apply(op, arguments) = instructions[root].operation, let product = op as? Matmul else { return nil }
        // `Xᵀ u` with X first (transposed) or `uᵀ X` with X second (not transposed); u a vector either way.
        var candidates = [(matrix: Int, vector: Int)]()
        if product.transposeA { candidates.append((arguments[0], arguments[1])) }
        if !product.transposeB { candidates.append((arguments[1], arguments[0])) }
        for (matrix, vector) in candidates {
            guard case let .constant(x) = instructions[matrix].operation, x.rank == 2, x.shape[1] < 2 * x.shape[0] else { continue }
            var weights = [Double](repeating: 1, count: x.shape[0]), interior = Set<Int>()
            guard let (weighted, v) = Self.weightedProduct(vector, instructions, &weights, &interior),
                  matrices[weighted] == matrices[matrix] else { continue }
            self.v = v
            gram = Self.weightedGram(x, weights)
            self.interior = interior
            return
        }
        return nil
    }

    /// `index` as `D ⊙ (X v)` (vector layout `[n]`, `[n, 1]` or `[1, n]`): returns the indices of `X` and
    /// `v`, multiplies `weights` (`[n]`) by the factors met on the way and adds the values passed to `interior`.
    private static func weightedProduct(
        _ index: Int, _ instructions: [Program.Instruction], _ weights: inout [Double], _ interior: inout Set<Int>
    ) -> (matrix: Int, v: Int)? {
        let count = weights.count
        guard case let .apply(op, arguments) = instructions[index].operation,
              NormalProductMatch.isVectorLike(instructions[index].shape), elementCount(instructions[index].shape) == count
        else { return nil }
        var product = Set<Int>()
        if let (matrix, v) = NormalProductMatch.product(index, instructions, &product) {
            interior.formUnion(product)
            return (matrix, v)
        }
        interior.insert(index)
        func constant(_ k: Int) -> Tensor? {
            if case let .constant(tensor) = instructions[k].operation, [1, count].contains(tensor.count) { return tensor }
            return nil
        }
        func scale(by factor: Tensor, dividing: Bool = false) {
            for i in weights.indices {
                let element = factor.scalars[factor.count == 1 ? 0 : i]
                weights[i] = dividing ? weights[i] / element : weights[i] * element
            }
        }
        switch op {
        case is Reshape:
            break
        case is Negate:
            scale(by: Tensor(-1.0))
        case is Multiply, is Matmul:
            guard let k = arguments.indices.first(where: { constant(arguments[$0]) != nil }),
                  op is Multiply || constant(arguments[k])!.count == 1 else { return nil }
            scale(by: constant(arguments[k])!)
            return weightedProduct(arguments[1 - k], instructions, &weights, &interior)
        case is Divide:
            guard let divisor = constant(arguments[1]) else { return nil }
            scale(by: divisor, dividing: true)
        case let tree as FusedElementwise:
            let free = arguments.indices.filter { constant(arguments[$0]) == nil }
            guard free.count == 1, elementCount(instructions[arguments[free[0]]].shape) == count, tree.isLinear(in: free[0]) else { return nil }
            // f(u) = c ⊙ u, so c = f(1).
            let inputs = arguments.indices.map { k in
                k == free[0] ? Tensor(shape: instructions[arguments[k]].shape, scalars: [Double](repeating: 1, count: count), trace: nil)
                    : constant(arguments[k])!
            }
            scale(by: tree.value(inputs))
            return weightedProduct(arguments[free[0]], instructions, &weights, &interior)
        default:
            return nil
        }
        return weightedProduct(arguments[0], instructions, &weights, &interior)
    }

    /// `Xᵀ diag(D) X`: the Gram matrix of `X`'s rows scaled by `√Dᵢ` when every `Dᵢ ≥ 0` (the symmetric
    /// kernel, half the products), else the GEMM `Xᵀ (D ⊙ X)`.
    private static func weightedGram(_ x: Tensor, _ weights: [Double]) -> Tensor {
        let columns = x.shape[1]
        func scaledRows(_ factors: [Double]) -> Tensor {
            Tensor(shape: x.shape, scalars: x.scalars.enumerated().map { factors[$0.offset / columns] * $0.element }, trace: nil)
        }
        if weights.allSatisfy({ $0 >= 0 }) { return scaledRows(weights.map { $0.squareRoot() }).gramMatrix }
        return Matmul(transposeA: true, transposeB: false).value(x, scaledRows(weights))
    }
}

extension FusedElementwise {
    /// Whether the tree is `c ⊙ u` in its input `k` (`u`), every other input held fixed: each step is
    /// independent of `u`, or is a sum or difference of steps linear in `u`, a negation of one, or a
    /// product (or a quotient, as the dividend) of one with a step independent of `u`.
    func isLinear(in k: Int) -> Bool {
        guard sumShape == nil else { return false }
        enum Dependence { case independent, linear }
        var dependence = [Dependence]()
        for step in steps {
            let operands = step.operands.map { operand -> Dependence in
                switch operand {
                case let .input(j): return j == k ? .linear : .independent
                case let .step(j): return dependence[j]
                }
            }
            let linear = operands.filter { $0 == .linear }.count
            switch (step.op, linear) {
            case (_, 0): dependence.append(.independent)
            case (.add, 2), (.subtract, 2), (.negate, 1), (.multiply, 1): dependence.append(.linear)
            case (.divide, 1) where operands[0] == .linear: dependence.append(.linear)
            default: return false
            }
        }
        return dependence.last == .linear
    }
}
