import Bilevel
import Foundation

/// The `--check` self-test of the meta-learning examples: a meta-gradient against central finite
/// differences of the meta-objective it differentiates.
public enum MetaGradientCheck {
    /// The largest accepted relative error `‖g − g_fd‖ / ‖g_fd‖`.
    public static let tolerance = 1e-6

    /// Central differences `g_fd[i] = (f(x + h eᵢ) − f(x − h eᵢ)) / 2h` of `objective` in every element of `x`.
    public static func centralDifferences(at x: Tensor, step h: Double, _ objective: (Tensor) -> Double) -> Tensor {
        Tensor(shape: x.shape, generator: { i in
            let unit = Tensor(shape: x.shape) { $0 == i ? h : 0 }
            return (objective(x + unit) - objective(x - unit)) / (2 * h)
        })
    }

    /// Prints `title`, `‖g_fd‖` and the relative errors of the MAML meta-gradient and (for contrast)
    /// the FO-MAML one against `reference`, then the verdict; returns whether MAML's error is within
    /// `tolerance`.
    public static func report(title: String, reference: Tensor, maml: Tensor, firstOrder: Tensor) -> Bool {
        func relativeError(_ g: Tensor) -> Double {
            ((g - reference).squaredNorm().scalar / reference.squaredNorm().scalar).squareRoot()
        }
        let error = relativeError(maml)
        print("""
            \(title)
              ‖g_fd‖                                   \(String(format: "%.6e", reference.squaredNorm().scalar.squareRoot()))
              MAML (ReverseUnroll)   relative error    \(String(format: "%.3e", error))
              FO-MAML (for contrast) relative error    \(String(format: "%.3e", relativeError(firstOrder)))
            """)
        let passed = error <= tolerance
        print(passed ? "check passed (tolerance \(tolerance))" : "CHECK FAILED: relative error \(error) > \(tolerance)")
        return passed
    }
}
