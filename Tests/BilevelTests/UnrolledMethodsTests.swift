import XCTest
@testable import Bilevel

/// FAD against RAD and finite differences; the one-stage estimate's O(ε²) order; sign-GU on P5.
final class UnrolledMethodsTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    func testFADEqualsRADAndFiniteDifferences() throws {
        let T = 12, problem = ridge.problem(steps: T), y0 = Tensor(zeros: [ridge.d])
        let fad = try ForwardUnroll().hypergradient(of: problem, at: ridge.x0, from: y0)
        let rad = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: y0)
        let fd = try finiteDifferenceGradient(at: ridge.x0, step: 1e-4) { try unrolledObjective(problem, $0, from: y0) }
        let errRAD = relativeError(fad.hypergradient, rad.hypergradient), errFD = relativeError(fad.hypergradient, fd)
        print("FAD T=\(T): vs RAD \(errRAD), vs FD \(errFD)")
        XCTAssertLessThan(errRAD, 1e-10)
        XCTAssertLessThan(errFD, 1e-6)
        XCTAssertEqual(fad.diagnostics.counts.jvps, ridge.d * T)
        XCTAssertEqual(fad.diagnostics.counts.vjps, 0)
        XCTAssertTrue(fad.innerSolution.isApproximatelyEqual(to: rad.innerSolution, tolerance: 1e-14))
    }

    func testMomentumFADEqualsRADAndFiniteDifferences() throws {
        let small = Fixtures.Ridge(n: 40, d: 6)
        let problem = small.problem(steps: 10, dynamics: .momentum(step: 0.5 * small.eta, beta: 0.6)), y0 = Tensor(zeros: [small.d])
        let fad = try ForwardUnroll().hypergradient(of: problem, at: small.x0, from: y0).hypergradient
        let rad = try ReverseUnroll().hypergradient(of: problem, at: small.x0, from: y0).hypergradient
        let fd = try finiteDifferenceGradient(at: small.x0, step: 1e-4) { try unrolledObjective(problem, $0, from: y0) }
        print("momentum: FAD vs RAD \(relativeError(fad, rad)), FAD vs FD \(relativeError(fad, fd))")
        XCTAssertLessThan(relativeError(fad, rad), 1e-10)
        XCTAssertLessThan(relativeError(fad, fd), 1e-6)
    }

    func testFADNamesTheDivergingStep() {
        let small = Fixtures.Ridge(n: 40, d: 3)
        let problem = small.problem(steps: 5000, dynamics: .gradientDescent(step: 100 * small.eta))
        XCTAssertThrowsError(try ForwardUnroll().hypergradient(of: problem, at: small.x0, from: Tensor(ones: [small.d]))) {
            guard case let BilevelError.nonFinite(_, step) = $0 else { return XCTFail("\($0)") }
            XCTAssertGreaterThan(step ?? 0, 1)
        }
    }

    /// On P3 (∇ₓf is not quadratic in w) the central difference has an O(ε²) error: halving ε divides
    /// the error against the exact one-step derivative (RAD with T = 1) by about 4.
    func testOneStageIsSecondOrderInEpsilon() throws {
        let cleaning = Fixtures.Cleaning(n: 40, m: 20, d: 5)
        let problem = cleaning.problem(steps: 1, step: 2)
        let y0 = Tensor((0..<cleaning.d).map { 0.5 * sin(Double($0) + 1) })
        let exact = try ReverseUnroll().hypergradient(of: problem, at: cleaning.x0, from: y0).hypergradient
        let epsilons = [0.8, 0.4, 0.2, 0.1]
        var results: [HypergradientResult] = []
        for eps in epsilons { results.append(try OneStage(epsilon: eps).hypergradient(of: problem, at: cleaning.x0, from: y0)) }
        let errors = results.map { relativeError($0.hypergradient, exact) }
        let ratios = zip(errors, errors.dropFirst()).map { $0 / $1 }
        print("one-stage errors for ε = \(epsilons): \(errors); ratios \(ratios)")
        for ratio in ratios { XCTAssertEqual(ratio, 4, accuracy: 0.3) }
        XCTAssertEqual(results[0].diagnostics.counts.gradients, 4)
        XCTAssertEqual(results[0].diagnostics.counts.hvps + results[0].diagnostics.counts.mixedProducts + results[0].diagnostics.counts.vjps, 0)
        let defaultStep = try OneStage().hypergradient(of: problem, at: cleaning.x0, from: y0).hypergradient
        XCTAssertLessThan(relativeError(defaultStep, exact), 1e-5)
    }

    func testOneStageIsExactForQuadraticCoupling() throws {
        let problem = ridge.problem(steps: 1), y0 = Tensor((0..<ridge.d).map { cos(Double($0)) })
        let exact = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient
        let oneStage = try OneStage(epsilon: 0.5).hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient
        let err = relativeError(oneStage, exact)
        print("one-stage on ridge (∇ₓf quadratic in w) vs exact one-step derivative: \(err)")
        XCTAssertLessThan(err, 1e-12)
        XCTAssertThrowsError(try OneStage().hypergradient(of: ridge.problem(steps: 1, dynamics: .momentum(step: 0.1, beta: 0.5)), at: ridge.x0, from: y0))
    }

    /// P5: sign-SGD with β = 0.01, T = 100. The unrolled map x ↦ F(x, w_T(x)) is piecewise constant in w_T:
    /// central differences with h = 1e-7 stay inside one region (w_T(x ± h e_j) = w_T(x) exactly, checked),
    /// and sign-GU matches them (here 0.02 x, the direct term).
    func testSignUnrollMatchesFiniteDifferencesOfItsMapOnP5() throws {
        let ridge = self.ridge
        let upper: (Tensor, Tensor) -> Tensor = { x, w in ridge.upper(x, w) + 0.01 * x.squaredNorm() }
        let problem = BilevelProblem(upper: upper, lower: ridge.lower, dynamics: .signGradientDescent(step: 0.01), innerSteps: 100)
        let w0 = Tensor(zeros: [ridge.d])
        let result = try SignUnroll().hypergradient(of: problem, at: ridge.x0, from: w0)
        let finalIterate = { (x: Tensor) in try BilevelOracle(problem).unroll(from: w0, x, steps: 100, like: w0).final }
        let wT = try finalIterate(ridge.x0)
        for j in 0..<ridge.d {
            for h in [1e-7, -1e-7] { XCTAssertEqual(try finalIterate(perturbed(ridge.x0, at: j, by: h)).scalars, wT.scalars, "w_T must not move at x ± h e_\(j)") }
        }
        let fd = try finiteDifferenceGradient(at: ridge.x0, step: 1e-7) { try unrolledObjective(problem, $0, from: w0) }
        let err = relativeError(result.hypergradient, fd)
        let distance = (result.innerSolution - ridge.solution(ridge.x0)).scalars.map(abs).max()!
        print("sign-GU vs central differences of its map (h = 1e-7): \(err); ‖w_T − w*‖∞ = \(distance)")
        XCTAssertLessThan(err, 1e-6)
        XCTAssertLessThan(relativeError(result.hypergradient, 0.02 * ridge.x0), 1e-15)
        XCTAssertEqual(result.innerSolution.scalars, wT.scalars)
        XCTAssertLessThan(distance, 0.02)
        XCTAssertEqual(result.diagnostics.counts.gradients, 1)
        XCTAssertEqual(result.diagnostics.innerSteps, 100)
        XCTAssertThrowsError(try SignUnroll().hypergradient(of: ridge.problem(steps: 5), at: ridge.x0, from: Tensor(zeros: [ridge.d])))
    }

    /// First-order unrolling after T momentum steps matches central differences of x ↦ F(x, w_T) with w_T
    /// held fixed, with one gradient and no products; central differences of the full unrolled map match
    /// RAD instead, and differ from it by more than 1%.
    func testFirstOrderUnrollMatchesFiniteDifferencesWithTheIterateFrozen() throws {
        let ridge = self.ridge
        let upper: (Tensor, Tensor) -> Tensor = { x, w in ridge.upper(x, w) + dot(sin(x), w) }
        let problem = BilevelProblem(upper: upper, lower: ridge.lower, dynamics: .momentum(step: ridge.eta, beta: 0.5), innerSteps: 20)
        let w0 = Tensor(zeros: [ridge.d])
        let result = try FirstOrderUnroll().hypergradient(of: problem, at: ridge.x0, from: w0)
        let wT = result.innerSolution
        let frozen = finiteDifferenceGradient(at: ridge.x0, step: 1e-5) { upper($0, wT).scalar }
        let full = try finiteDifferenceGradient(at: ridge.x0, step: 1e-5) { try unrolledObjective(problem, $0, from: w0) }
        let rad = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: w0)
        print("first-order unroll vs FD with w_T frozen \(relativeError(result.hypergradient, frozen)); RAD vs FD of the map \(relativeError(rad.hypergradient, full))")
        XCTAssertLessThan(relativeError(result.hypergradient, frozen), 1e-8)
        XCTAssertLessThan(relativeError(rad.hypergradient, full), 1e-6)
        XCTAssertEqual(result.diagnostics.counts, { var c = DerivativeCounts(); c.gradients = 1; return c }())
        XCTAssertGreaterThan(relativeError(result.hypergradient, full), 1e-2, "dropping A_t, B_t must matter here")
    }
}
