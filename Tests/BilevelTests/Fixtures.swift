import Foundation
@testable import Bilevel

/// The P1/P2/P3/P5 workloads of workloads.md, built from their formulas at small sizes for fast tests.
enum Fixtures {
    /// P1 ridge data: training `A, b`, validation `C, dv`, hyperparameters `x0`.
    struct Ridge {
        let n: Int, m: Int, d: Int
        let a: Tensor, b: Tensor, c: Tensor, dv: Tensor, x0: Tensor

        init(n: Int = 200, d: Int = 20) {
            self.n = n; self.d = d; m = n / 2
            let rows = n + m
            var z = [Double](repeating: 0, count: rows * d), t = [Double](repeating: 0, count: rows)
            for r in 0..<rows {
                var s = 0.0
                for j in 0..<d {
                    z[r * d + j] = sin((0.37 * Double(r + 1) + 1.3 * Double(j + 1)) + (0.0731 * Double(r + 1)) * Double(j + 1))
                    s += z[r * d + j] * cos(0.5 * Double(j + 1))
                }
                t[r] = s + 0.1 * sin(2.1 * Double(r + 1) + 0.3)
            }
            a = Tensor(shape: [n, d], scalars: Array(z[0..<(n * d)]))
            b = Tensor(Array(t[0..<n]))
            c = Tensor(shape: [m, d], scalars: Array(z[(n * d)...]))
            dv = Tensor(Array(t[n...]))
            x0 = Tensor((0..<d).map { -3 + 0.5 * cos(0.9 * Double($0 + 1)) })
            eta = 1
            let h = hessian(x0)
            var v = Tensor(ones: [d]), lambda = 0.0
            for _ in 0..<500 {
                let hv = matmul(h, v)
                lambda = hv.squaredNorm().scalar.squareRoot()
                v = hv / lambda
            }
            eta = 1 / lambda
        }

        /// `f(x, w) = 0.5/n ‖A w − b‖² + 0.5 Σ exp(x_j) w_j²`.
        func lower(_ x: Tensor, _ w: Tensor) -> Tensor {
            let r = matmul(a, w) - b
            return 0.5 / Double(n) * r.squaredNorm() + 0.5 * (exp(x) * w * w).sum()
        }

        /// `F(w) = 0.5/m ‖C w − dv‖²`.
        func upper(_ x: Tensor, _ w: Tensor) -> Tensor { 0.5 / Double(m) * (matmul(c, w) - dv).squaredNorm() }

        /// `H(x) = AᵀA/n + diag(exp x)`.
        func hessian(_ x: Tensor) -> Tensor {
            let gram = matmul(a, a, transposeA: true, transposeB: false) / Double(n)
            let e = exp(x).scalars
            return gram + Tensor(shape: [d, d]) { k in k / d == k % d ? e[k / d] : 0 }
        }

        /// `η = 1/L`, L the largest eigenvalue of `H(x0)` (power iteration).
        private(set) var eta: Double

        /// The P2 problem: gradient descent with step η for T steps (or any dynamics).
        func problem(steps: Int, dynamics: InnerDynamics? = nil) -> BilevelProblem {
            BilevelProblem(upper: upper, lower: lower, dynamics: dynamics ?? .gradientDescent(step: eta), innerSteps: steps)
        }

        /// `w*(x) = H⁻¹ Aᵀb/n`.
        func solution(_ x: Tensor) -> Tensor { solve(hessian(x), matmul(b, a) / Double(n)) }

        /// The closed-form P1 hypergradient `−exp(x) ⊙ w* ⊙ H⁻¹ ∇F(w*)`.
        func exactHypergradient(_ x: Tensor) -> Tensor {
            let w = solution(x)
            let v = solve(hessian(x), matmul(matmul(c, w) - dv, c) / Double(m))
            return -exp(x) * w * v
        }

        /// The P2 reference: the exact derivative of `F(w_T(x))`, truncated to the last `M` steps.
        func unrolledHypergradient(_ x: Tensor, steps T: Int, truncation M: Int? = nil) -> Tensor {
            let h = hessian(x), atb = matmul(b, a) / Double(n)
            var ws = [Tensor(zeros: [d])]
            for t in 0..<T { ws.append(ws[t] - eta * (matmul(h, ws[t]) - atb)) }
            var p = matmul(matmul(c, ws[T]) - dv, c) / Double(m), g = Tensor(zeros: [d])
            for t in stride(from: T - 1, through: T - (M ?? T), by: -1) {
                g = g - eta * exp(x) * ws[t] * p
                p = p - eta * matmul(h, p)
            }
            return g
        }
    }

    /// P3 data hyper-cleaning at reduced size (`n` training, `m` validation rows, `d` features).
    struct Cleaning {
        let n: Int, m: Int, d: Int
        let xtr: Tensor, ytr: Tensor, xv: Tensor, yv: Tensor, x0: Tensor

        init(n: Int = 500, m: Int = 200, d: Int = 50) {
            self.n = n; self.m = m; self.d = d
            var z = [Double](), labels = [Double]()
            for r in 0..<(n + m) {
                var s = 0.0
                for j in 0..<d {
                    let v = sin((0.53 * Double(r + 1) + 0.9 * Double(j + 1)) + (0.0417 * Double(r + 1)) * Double(j + 1))
                    z.append(v)
                    s += v * cos(0.7 * Double(j + 1))
                }
                labels.append(s + 0.3 * sin(1.7 * Double(r + 1)) >= 0 ? 1 : -1)
            }
            xtr = Tensor(shape: [n, d], scalars: Array(z[0..<(n * d)]))
            ytr = Tensor((0..<n).map { $0 % 5 == 0 ? -labels[$0] : labels[$0] })
            xv = Tensor(shape: [m, d], scalars: Array(z[(n * d)...]))
            yv = Tensor(Array(labels[n...]))
            x0 = Tensor((0..<n).map { 0.5 * cos(0.7 * Double($0 + 1)) })
        }

        /// `f(x, w) = (1/n) Σ sigmoid(x_i) softplus(−ytr_i X_i·w) + 1e-3 ‖w‖²`.
        func lower(_ x: Tensor, _ w: Tensor) -> Tensor {
            (sigmoid(x) * softplus(-(ytr * matmul(xtr, w)))).mean() + 1e-3 * w.squaredNorm()
        }

        /// `F(w) = (1/m) Σ softplus(−yv_i Xv_i·w)`.
        func upper(_ x: Tensor, _ w: Tensor) -> Tensor { softplus(-(yv * matmul(xv, w))).mean() }

        /// The problem with gradient-descent inner dynamics.
        func problem(steps: Int, step: Double = 10) -> BilevelProblem {
            BilevelProblem(upper: upper, lower: lower, dynamics: .gradientDescent(step: step), innerSteps: steps)
        }

        /// `w*(x)` by Newton's method from 0 until `‖∇f‖ ≤ 1e-13`.
        func solution(_ x: Tensor) -> Tensor {
            var w = Tensor(zeros: [d])
            for _ in 0..<50 {
                let g = gradient(at: w) { lower(x, $0) }
                if g.squaredNorm().scalar.squareRoot() <= 1e-13 { break }
                w = w - solve(hessian(at: w) { lower(x, $0) }, g)
            }
            return w
        }
    }
}

/// The largest `|a_i − b_i|` over `‖b‖_∞`.
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.shape == b.shape, "relativeError: shapes \(a.shape) and \(b.shape)")
    let scale = max(b.scalars.map(abs).max() ?? 0, 1e-300)
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()! / scale
}

/// `x` with `delta` added at flat index `i`.
func perturbed(_ x: Tensor, at i: Int, by delta: Double) -> Tensor {
    var s = x.scalars
    s[i] += delta
    return Tensor(shape: x.shape, scalars: s)
}

/// Central finite differences of a scalar function of `x`, with step `h`.
func finiteDifferenceGradient(at x: Tensor, step h: Double = 1e-5, _ f: (Tensor) throws -> Double) rethrows -> Tensor {
    Tensor(shape: x.shape, scalars: try (0..<x.count).map { i in
        (try f(perturbed(x, at: i, by: h)) - f(perturbed(x, at: i, by: -h))) / (2 * h)
    })
}

/// `F(x, y_T(x))` after T inner steps of the problem's dynamics (values only).
func unrolledObjective(_ problem: BilevelProblem, _ x: Tensor, from y0: Tensor) throws -> Double {
    let oracle = BilevelOracle(problem)
    let (s, _) = try oracle.unroll(from: problem.dynamics.initialState(y0), x, steps: problem.innerSteps, like: y0)
    return problem.upper(x, problem.dynamics.iterate(s, like: y0)).scalar
}
