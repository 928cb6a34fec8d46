// The Gram-matrix rewrite: `normalProduct(A, v, minus: b)` with a constant A → `G v − c`, G = AᵀA and
// c = Aᵀb computed once, at optimization time.

extension Program {
    /// Replaces every `normalProduct(A, v)` and `normalProduct(A, v, minus: b)` whose matrix `A` `[n, d]`
    /// is a constant of the program with `d ≤ n/2` (and whose `b`, if any, is a constant too) by
    ///
    ///     Aᵀ(A v − b) = G v − c,    G = AᵀA  [d, d],   c = Aᵀb  [d],
    ///
    /// with `G` and `c` new constants computed here, once (`G` by the symmetric Gram product, about
    /// `n d²` multiply–adds). One `G` serves every product of the same matrix in the program (equal
    /// constants are recognised by value, `matrixIdentities()`), as the two of a step's JVP. Run after
    /// `fusingNormalProducts()`, this also covers `matmul(Aᵀ, α (A v − b))` written out.
    ///
    /// Cost model: the fused product reads A once (`n d` numbers, `2 n d` multiply–adds) per call;
    /// `G v − c` reads `d² + d` numbers (`d²` multiply–adds). With `d ≤ n/2`, `d² ≤ n d / 2`: every
    /// replayed call reads at most half as much; the one-off `n d²` lands in staging time. With a `b`
    /// that is not a constant, `Aᵀb` would still read A every call (`d² + n d` numbers, more than the
    /// fused `n d`), so those products are left alone, as are those whose A is not a constant (an input
    /// of the program) or too wide (`d > n/2`).
    ///
    /// The result equals the fused product up to rounding only: `(AᵀA) v` and `Aᵀ(A v)` sum the same
    /// products in another order: not bit-for-bit, a relative difference of order `n ε ‖A‖² ‖v‖ / ‖Aᵀ(A v − b)‖`
    /// (ε the unit roundoff); below 1e-12 on P2's step and VJP replayed 1000 times (`GramRewriteTests`).
    public func usingGramMatrices() -> Program {
        let matrices = matrixIdentities()
        var grams = [Int: Int](), targets = [[Int]: Int]()
        return rewritten { _, instruction, arguments, builder in
            guard case let .apply(op, old) = instruction.operation, let product = op as? NormalProduct,
                  let a = builder.constant(arguments[0]), a.shape[1] * 2 <= a.shape[0],
                  !product.subtractsTarget || builder.constant(arguments[2]) != nil
            else { return builder.add(instruction, arguments) }
            let rows = a.shape[0], columns = a.shape[1], matrix = matrices[old[0]]
            let transposedProduct = Matmul(transposeA: true, transposeB: false)
            let gram = grams[matrix] ?? builder.add(.constant(a.gramMatrix), shape: [columns, columns])
            grams[matrix] = gram
            let column = builder.add(.apply(Reshape(shape: [columns, 1]), arguments: [arguments[1]]), shape: [columns, 1])
            let gramTimesColumn = builder.add(.apply(Matmul(transposeA: false, transposeB: false), arguments: [gram, column]), shape: [columns, 1])
            let result = builder.add(.apply(Reshape(shape: [columns]), arguments: [gramTimesColumn]), shape: [columns])
            guard product.subtractsTarget, let b = builder.constant(arguments[2]) else { return result }
            let key = [matrix, arguments[2]]
            let target = targets[key] ?? builder.add(.constant(Tensor(
                shape: [columns], scalars: transposedProduct.value(a, Tensor(shape: [rows, 1], scalars: b.scalars, trace: nil)).scalars,
                trace: nil)), shape: [columns])
            targets[key] = target
            return builder.add(.apply(Subtract(), arguments: [result, target]), shape: [columns])
        }
    }
}

extension Tensor {
    /// `AᵀA` `[d, d]` of this matrix `A` `[n, d]`, by the symmetric Gram kernel (`MatmulKernel.gemm` with
    /// both operands the same storage): about `n d²/2` multiply–adds, the result exactly symmetric.
    var gramMatrix: Tensor { Matmul(transposeA: true, transposeB: false).value(self, self) }
}
