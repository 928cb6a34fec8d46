// Derivatives of programs are programs: each transform stages the eager transform of running the
// program (JAX's jit-of-grad). The rules recorded are exactly the primitives' JVP and VJP rules, run on
// symbolic values, so a staged derivative equals the eager one and can be transformed again.

extension Program {
    /// The program `(xs…) ↦ (∇ₓ₀f, ∇ₓ₁f, …)`: the gradient with respect to every argument.
    ///
    /// - Precondition: the program has one output of one element.
    public func gradient() -> Program {
        requireScalarOutput("gradient")
        return stage(shapes: inputShapes, outputs: { xs in valueWithGradient(at: xs) { self.outputs(at: $0)[0] }.gradients })
    }

    /// The program `(xs…, ȳ) ↦ ((∂f/∂xᵢ)ᵀ ȳ)ᵢ`: the pullback of a one-output program, whose last
    /// argument is the cotangent (of the output's shape).
    ///
    /// - Precondition: the program has one output.
    public func vjp() -> Program {
        requireOneOutput("vjp")
        let n = inputShapes.count
        return stage(shapes: inputShapes + outputShapes, outputs: { args in
            valueWithPullback(at: Array(args[..<n])) { self.outputs(at: $0)[0] }.pullback(args[n])
        })
    }

    /// The program `(xs…, vs…) ↦ Σᵢ (∂f/∂xᵢ) vᵢ`: the Jacobian-vector product of a one-output program,
    /// with one direction argument per input (forward mode).
    ///
    /// - Precondition: the program has one output.
    public func jvp() -> Program {
        requireOneOutput("jvp")
        let n = inputShapes.count
        return stage(shapes: inputShapes + inputShapes, outputs: { args in
            [valueWithDifferential(at: Array(args[..<n]), directions: Array(args[n...])) { self.outputs(at: $0)[0] }.differential]
        })
    }

    /// The program `(xs…, vs…) ↦ (∇²f · v)ᵢ`, one block per argument (`hvp(at:directions:mode:of:)`
    /// staged): reverse-over-reverse or forward-over-reverse.
    ///
    /// - Precondition: the program has one output of one element.
    public func hvp(mode: HVPMode = .reverseOverReverse) -> Program {
        requireScalarOutput("hvp")
        let n = inputShapes.count
        return stage(shapes: inputShapes + inputShapes, outputs: { args in
            AutoDiff.hvp(at: Array(args[..<n]), directions: Array(args[n...]), mode: mode) { self.outputs(at: $0)[0] }
        })
    }

    /// The program `(x, y, v) ↦ ∇²ₓᵧf · v = ∇ₓ⟨∇ᵧf(x, y), v⟩` of a scalar program of two arguments
    /// (`mixedHVP(at:_:direction:of:)` staged), `v` of the shape of `y`.
    ///
    /// - Precondition: two arguments, one output of one element.
    public func mixedHVP() -> Program {
        requireScalarOutput("mixedHVP")
        engineCheck(
            inputShapes.count == 2,
            "\(AutoDiffError.invalidArgument(op: "Program.mixedHVP", reason: "the program must take two arguments (x, y), it takes \(inputShapes.count)"))")
        return stage(shapes: inputShapes + [inputShapes[1]], outputs: { args in
            [AutoDiff.mixedHVP(at: args[0], args[1], direction: args[2]) { self.outputs(at: [$0, $1])[0] }]
        })
    }

    private func requireOneOutput(_ transform: String) {
        engineCheck(
            outputs.count == 1,
            "\(AutoDiffError.invalidArgument(op: "Program.\(transform)", reason: "the program has \(outputs.count) outputs; stage a function of one output"))")
    }

    private func requireScalarOutput(_ transform: String) {
        requireOneOutput(transform)
        engineCheck(
            outputShapes[0].reduce(1, *) == 1,
            "\(AutoDiffError.nonScalarOutput(transform: "Program.\(transform)", shape: outputShapes[0]))")
    }
}
