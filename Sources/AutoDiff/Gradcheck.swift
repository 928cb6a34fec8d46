import Foundation

/// The outcome of `gradcheck`: how far the engine's derivatives are from central finite differences.
public struct GradcheckResult: CustomStringConvertible {
    /// Which derivative disagreed.
    public enum Mode: String, Sendable {
        /// The reverse-mode Jacobian (rows from `vjp` pullbacks).
        case reverse
        /// The forward-mode Jacobian (columns from `jvp`).
        case forward
    }

    /// One Jacobian entry compared: `∂ f[output] / ∂ x[input]`.
    public struct Entry: CustomStringConvertible, Sendable {
        /// Reverse or forward mode.
        public var mode: Mode
        /// Flat index into the output.
        public var output: Int
        /// Flat index into the input.
        public var input: Int
        /// The engine's value.
        public var automatic: Double
        /// The central finite difference.
        public var finiteDifference: Double
        /// `|automatic − finiteDifference| / max(1, |finiteDifference|)` (NaN when either is not finite).
        public var relativeError: Double

        /// `reverse ∂f[i]/∂x[j]: AD … vs FD … (rel. err …)`.
        public var description: String {
            "\(mode) ∂f[\(output)]/∂x[\(input)]: AD \(automatic) vs FD \(finiteDifference) (relative error \(relativeError))"
        }
    }

    /// The largest relative error over every compared entry (`.nan` if any value was not finite).
    public var maxRelativeError: Double
    /// The entry where `maxRelativeError` occurred.
    public var worst: Entry?
    /// Every entry where the function value, an engine derivative or a finite difference was NaN or
    /// infinite. Such entries are never counted as agreeing.
    public var nonFinite: [Entry]
    /// The finite-difference step used for each input element.
    public var steps: [Double]

    /// Whether every value compared was finite.
    public var isFinite: Bool { nonFinite.isEmpty }

    /// Whether all values were finite and the worst relative error is at most `tolerance`.
    public func passes(tolerance: Double = 1e-6) -> Bool { isFinite && maxRelativeError <= tolerance }

    /// A summary naming the worst entry and any non-finite one.
    public var description: String {
        var text = "gradcheck: max relative error \(maxRelativeError)"
        if let worst { text += " at \(worst)" }
        if !nonFinite.isEmpty {
            text += "; \(nonFinite.count) non-finite value(s), first: \(nonFinite[0])"
        }
        return text
    }
}

/// Checks the derivatives of `f` at `x` against central finite differences.
///
/// For every input element `j` the finite difference
/// `(f(x + hⱼ eⱼ) − f(x − hⱼ eⱼ)) / 2hⱼ` is compared with column `j` of the forward-mode Jacobian
/// (`jvp` with direction `eⱼ`) and with the matching entries of the reverse-mode Jacobian (one `vjp`
/// pullback per output element). The step `hⱼ = step · max(1, |xⱼ|)` defaults to `step = 6e-6`, close to
/// `ε^{1/3}` (`ε` the machine epsilon), which balances the O(h²) truncation error of the central
/// difference against its O(ε/h) rounding error, leaving about 1e-10 of relative noise.
///
/// The error of an entry is `|AD − FD| / max(1, |FD|)`: relative for large derivatives, absolute for
/// those below one. Non-finite values are collected in `nonFinite`, never compared away.
///
/// - Parameters:
///   - x: the point; at least one element.
///   - step: the relative finite-difference step (default `6e-6`).
///   - f: any function of one tensor built from engine ops.
public func gradcheck(at x: Tensor, step: Double? = nil, of f: (Tensor) -> Tensor) -> GradcheckResult {
    engineCheck(x.count > 0, "\(AutoDiffError.emptyTensor(op: "gradcheck"))")
    let relativeStep = step ?? 6e-6
    engineCheck(relativeStep > 0, "gradcheck: the step must be positive, got \(relativeStep)")
    let point = x.detached
    let (value, pullback) = vjp(at: point, of: f)
    let outputs = value.count, inputs = x.count
    let steps = point.scalars.map { relativeStep * Swift.max(1, Swift.abs($0)) }

    // Reverse mode: row i of the Jacobian from the pullback of the i-th basis cotangent.
    var reverse = [Double](repeating: 0, count: outputs * inputs)
    for i in 0..<outputs {
        var basis = Tensor(zeros: value.shape)
        basis.scalars[i] = 1
        let row = pullback(basis).scalars
        for j in 0..<inputs { reverse[i * inputs + j] = row[j] }
    }

    var result = GradcheckResult(maxRelativeError: 0, worst: nil, nonFinite: [], steps: steps)
    if value.hasNonFinite {
        result.nonFinite.append(.init(mode: .reverse, output: value.scalars.firstIndex { !$0.isFinite }!, input: -1,
                                      automatic: .nan, finiteDifference: .nan, relativeError: .nan))
    }
    for j in 0..<inputs {
        var plus = point, minus = point, direction = Tensor(zeros: point.shape)
        plus.scalars[j] += steps[j]
        minus.scalars[j] -= steps[j]
        direction.scalars[j] = 1
        let high = f(plus).scalars, low = f(minus).scalars
        let forward = jvp(at: point, direction: direction, of: f).tangent.scalars
        let width = plus.scalars[j] - minus.scalars[j]  // the step actually taken, after rounding
        for i in 0..<outputs {
            let difference = (high[i] - low[i]) / width
            for (mode, automatic) in [(GradcheckResult.Mode.reverse, reverse[i * inputs + j]), (.forward, forward[i])] {
                let error = Swift.abs(automatic - difference) / Swift.max(1, Swift.abs(difference))
                let entry = GradcheckResult.Entry(
                    mode: mode, output: i, input: j, automatic: automatic, finiteDifference: difference,
                    relativeError: error)
                if !automatic.isFinite || !difference.isFinite {
                    result.nonFinite.append(entry)
                } else if error > result.maxRelativeError || result.worst == nil {
                    result.maxRelativeError = error
                    result.worst = entry
                }
            }
        }
    }
    if !result.nonFinite.isEmpty { result.maxRelativeError = .nan }
    return result
}

/// Checks the derivatives of `f(x, y)` with respect to both arguments (see `gradcheck(at:step:of:)`):
/// the two are joined into one flat vector, `x`'s elements first.
public func gradcheck(at x: Tensor, _ y: Tensor, step: Double? = nil, of f: (Tensor, Tensor) -> Tensor) -> GradcheckResult {
    let joined = concatenate([x.reshaped(to: [x.count]), y.reshaped(to: [y.count])])
    return gradcheck(at: joined, step: step) { z in
        f(z[0..<x.count].reshaped(to: x.shape), z[x.count..<(x.count + y.count)].reshaped(to: y.shape))
    }
}
