import Foundation
import XCTest
@testable import AutoDiff

/// The model ops (select, gather / scatter-add, maximum / minimum along an axis, clamp, log1p, expm1,
/// conv2d and its adjoints, max / average pooling, cross-entropy over class indices) through `gradcheck`
/// at first and second order (relative error ≤ 1e-6), and their values against hand computations.
final class ModelOpTests: XCTestCase {
    static func input(_ shape: [Int], offset: Double = 0) -> Tensor { OpGradcheckTests.input(shape, offset: offset) }

    /// Indices for the gather / scatter cases (with repeats, so scatter-add really adds).
    static let columns = AxisIndices([3, 0, 3, 1, 1, 2], shape: [2, 3])
    static let rows = AxisIndices([1, 0, 1, 1], shape: [1, 4])
    static let mask = Tensor(shape: [2, 3], scalars: [1, 0, 0, 1, 1, 0])
    static let window = ConvolutionWindow(kernelHeight: 3, kernelWidth: 2, stride: 2, padding: 1)

    static let unaryCases: [GradcheckAtEveryOrder.Unary] = [
        ("log1p", input([2, 3]), { log1p($0) }),
        ("expm1", input([2, 3]), { expm1($0) }),
        ("clamp", input([2, 4]), { clamp($0, lower: -0.5, upper: 0.5) * $0 }),
        ("clamp-one-sided", input([6]), { clamp($0, lower: 0, upper: .infinity) }),
        ("gather-axis1", input([2, 4]), { $0.gathering(columns, alongAxis: 1) * $0.slice(alongAxis: 1, 0..<3) }),
        ("gather-axis0", input([2, 4]), { $0.gathering(rows, alongAxis: 0) * $0[0] }),
        ("scatterAdd-axis1", input([2, 3]), { $0.scatterAdding(columns, alongAxis: 1, into: [2, 4]) * input([2, 4], offset: 1) * $0.sum() }),
        ("maximum-axis0", input([3, 4]), { $0.maximum(alongAxis: 0) * $0[1] }),
        ("maximum-axis-last", input([3, 4]), { ($0 * $0).maximum(alongAxis: -1) }),
        ("minimum-axis1", input([3, 4]), { $0.minimum(alongAxis: 1) * $0.sum(alongAxis: 1) }),
        ("maxPool2d", input([1, 2, 4, 4]), { maxPool2d($0 * $0, kernel: 2) }),
        ("maxPool2d-stride-padding", input([1, 1, 5, 5]), { maxPool2d(sin($0), kernel: 3, stride: 2, padding: 1) }),
        ("avgPool2d", input([1, 2, 4, 4]), { avgPool2d($0 * $0, kernel: 2) }),
        ("avgPool2d-stride-padding", input([2, 1, 5, 5]), { avgPool2d($0 * $0, kernel: 3, stride: 1, padding: 1) }),
        ("crossEntropy-indices", input([3, 4]), { crossEntropy(logits: 2 * $0, classIndices: [2, 0, 3]) }),
        ("crossEntropy-index-tensor", input([2, 3]), { crossEntropy(logits: $0, classIndices: Tensor([1, 2])) }),
    ]

    static let binaryCases: [GradcheckAtEveryOrder.Binary] = [
        ("select", input([2, 3]), input([3], offset: 1), { select(mask, $0 * $1, $1 * $1) }),
        ("conv2d", input([2, 2, 5, 5]), input([3, 2, 3, 3], offset: 1), { conv2d($0, filter: $1, padding: 1) }),
        ("conv2d-stride", input([1, 2, 6, 5]), input([2, 2, 3, 2], offset: 1), { conv2d($0 * $0, filter: $1, stride: 2) }),
        ("conv2d-bias", input([2, 1, 3, 3], offset: 2), input([2], offset: 1), { conv2d(input([1, 1, 4, 4]), filter: $0, bias: $1, padding: 1) }),
        ("conv2dTranspose", input([1, 3, 3, 3]), input([3, 2, 3, 2], offset: 1), { Conv2DTranspose(window: window, height: 5, width: 4)($0, $1) }),
        ("conv2dFilterGradient", input([1, 2, 5, 4]), input([1, 3, 3, 3], offset: 1), { Conv2DFilterGradient(window: window)($0, $1) }),
    ]

    func testFirstOrder() { GradcheckAtEveryOrder.firstOrder(Self.unaryCases, Self.binaryCases) }

    /// `x ↦ ∇ₓ⟨w, f(x)⟩` runs every VJP rule as ops; its Jacobian is checked.
    func testVJPRulesAreDifferentiable() { GradcheckAtEveryOrder.vjpRules(Self.unaryCases, Self.binaryCases) }

    /// `x ↦ f'(x)·v` runs every JVP rule as ops; its Jacobian is checked.
    func testJVPRulesAreDifferentiable() { GradcheckAtEveryOrder.jvpRules(Self.unaryCases, Self.binaryCases) }

    /// The direct definition `y[n,o,i,j] = b[o] + Σ w[o,c,p,q] x[n,c,i·s−pad+p, j·s−pad+q]`.
    static func naiveConvolution(_ x: Tensor, _ w: Tensor, _ b: Tensor, stride s: Int, padding pad: Int) -> Tensor {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let oh = (h + 2 * pad - kh) / s + 1, ow = (wd + 2 * pad - kw) / s + 1
        var out = [Double](repeating: 0, count: n * o * oh * ow)
        for im in 0..<n { for oc in 0..<o { for i in 0..<oh { for j in 0..<ow {
            var sum = b.scalars[oc]
            for ic in 0..<c { for p in 0..<kh { for q in 0..<kw {
                let y = i * s - pad + p, xx = j * s - pad + q
                if y >= 0 && y < h && xx >= 0 && xx < wd {
                    sum += w.scalars[((oc * c + ic) * kh + p) * kw + q] * x.scalars[((im * c + ic) * h + y) * wd + xx]
                }
            } } }
            out[((im * o + oc) * oh + i) * ow + j] = sum
        } } } }
        return Tensor(shape: [n, o, oh, ow], scalars: out)
    }

    func testConvolutionMatchesTheDirectLoop() {
        let x = Self.input([2, 3, 7, 6]), w = Self.input([4, 3, 3, 2], offset: 1), b = Tensor([0.5, -1, 2, 0.25])
        for (stride, padding) in [(1, 0), (2, 1), (3, 2)] {
            let y = conv2d(x, filter: w, bias: b, stride: stride, padding: padding)
            let reference = Self.naiveConvolution(x, w, b, stride: stride, padding: padding)
            XCTAssertEqual(y.shape, reference.shape, "stride \(stride), padding \(padding)")
            XCTAssertTrue(y.isApproximatelyEqual(to: reference, tolerance: 1e-13), "stride \(stride), padding \(padding)")
        }
    }

    /// The two adjoints satisfy `⟨conv(x, w), g⟩ = ⟨x, convTranspose(g, w)⟩ = ⟨w, filterGradient(x, g)⟩`.
    func testConvolutionAdjointIdentities() {
        let window = ConvolutionWindow(kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1)
        let x = Self.input([2, 2, 6, 5]), w = Self.input([3, 2, 3, 3], offset: 1)
        let y = Conv2D(window: window)(x, w), g = Self.input(y.shape, offset: 2)
        let form = (y * g).sum().scalar
        XCTAssertEqual((x * Conv2DTranspose(window: window, height: 6, width: 5)(g, w)).sum().scalar, form, accuracy: 1e-12)
        XCTAssertEqual((w * Conv2DFilterGradient(window: window)(x, g)).sum().scalar, form, accuracy: 1e-12)
    }

    func testPoolingOnAHandExample() {
        let x = Tensor(shape: [1, 1, 4, 4], scalars: [1, 2, 0, -1, 4, 3, 5, 2, -2, 0, 1, 1, 7, -3, 0, 6])
        XCTAssertEqual(maxPool2d(x, kernel: 2).scalars, [4, 5, 7, 6])
        XCTAssertEqual(avgPool2d(x, kernel: 2).scalars, [2.5, 1.5, 0.5, 2])
        // Kernel 3, stride 2, padding 1: windows centred on (0,0), (0,2), (2,0), (2,2).
        XCTAssertEqual(maxPool2d(x, kernel: 3, stride: 2, padding: 1).shape, [1, 1, 2, 2])
        XCTAssertEqual(maxPool2d(x, kernel: 3, stride: 2, padding: 1).scalars, [4, 5, 7, 6])
        let average = avgPool2d(x, kernel: 3, stride: 2, padding: 1)
        XCTAssertTrue(average.isApproximatelyEqual(to: Tensor(shape: [1, 1, 2, 2], scalars: [10.0 / 9, 11.0 / 9, 1, 15.0 / 9])), "\(average)")
        // The max-pool gradient lands on the maxima only.
        let g = gradient(at: x) { maxPool2d($0, kernel: 2).sum() }
        XCTAssertEqual(g.scalars, [0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1])
    }

    func testCrossEntropyMatchesTheLogSoftmaxFormulaAndIsStable() {
        let logits = Self.input([3, 4]), labels = [2, 0, 3]
        let expected = -(0..<3).map { logSoftmax(logits, alongAxis: 1)[$0][labels[$0]].scalar }.reduce(0, +) / 3
        XCTAssertEqual(crossEntropy(logits: logits, classIndices: labels).scalar, expected, accuracy: 1e-14)
        let onehot = Tensor(shape: [3, 4]) { i in labels[i / 4] == i % 4 ? 1 : 0 }
        XCTAssertEqual(crossEntropy(logits: logits, classIndices: labels).scalar, crossEntropy(logits: logits, labels: onehot).scalar, accuracy: 1e-14)
        // ±1000: row 0 picks the larger logit (loss log(1 + e⁻²⁰⁰⁰) ≈ 0), row 1 the smaller (loss 2000).
        let huge = Tensor(shape: [2, 2], scalars: [1000, -1000, 1000, -1000])
        let loss = crossEntropy(logits: huge, classIndices: [0, 1])
        XCTAssertEqual(loss.scalar, 1000, accuracy: 1e-9)
        let g = gradient(at: huge) { crossEntropy(logits: $0, classIndices: [0, 1]) }
        XCTAssertEqual(g.scalars, [0, 0, 0.5, -0.5])
    }

    func testSelectionAndIndexingValues() {
        let x = Tensor(shape: [2, 4], scalars: [1, 5, 2, 5, -1, -3, 0, -3])
        XCTAssertEqual(x.argmax(alongAxis: 1).scalars, [1, 2])
        XCTAssertEqual(x.maximum(alongAxis: 1).scalars, [5, 0])
        XCTAssertEqual(x.minimum(alongAxis: 1).scalars, [1, -3])
        XCTAssertEqual(x.maximum(alongAxis: 0).scalars, [1, 5, 2, 5])
        XCTAssertEqual(gradient(at: x) { $0.maximum(alongAxis: 1).sum() }.scalars, [0, 1, 0, 0, 0, 0, 1, 0])
        XCTAssertEqual(x.gathering(Self.columns, alongAxis: 1).scalars, [5, 1, 5, -3, -3, 0])
        XCTAssertEqual(Tensor(ones: [2, 3]).scatterAdding(Self.columns, alongAxis: 1, into: [2, 4]).scalars, [1, 0, 0, 2, 0, 2, 1, 0])
        XCTAssertEqual(select(Tensor([1, 0, 1]), Tensor([1, 2, 3]), Tensor(-1)).scalars, [1, -1, 3])
        XCTAssertEqual(clamp(Tensor([-2, 0.3, 9]), lower: -1, upper: 1).scalars, [-1, 0.3, 1])
        XCTAssertEqual(log1p(Tensor([1e-12])).scalar, 1e-12 - 5e-25, accuracy: 1e-30)
        XCTAssertEqual(expm1(Tensor([1e-12])).scalar, 1e-12 + 5e-25, accuracy: 1e-30)
    }

    /// A NaN is the maximum (it propagates), and the Swift spellings are compilable expressions.
    func testNaNPropagatesAndSwiftSpellings() {
        let x = Tensor(shape: [1, 3], scalars: [1, .nan, 2])
        XCTAssertTrue(x.maximum(alongAxis: 1).scalar.isNaN)
        XCTAssertTrue(maxPool2d(x.reshaped(to: [1, 1, 1, 3]), kernel: 1, stride: 1).hasNonFinite)
        XCTAssertEqual(Gather(axis: 1, indices: AxisIndices([0, 2], shape: [1, 2])).swiftSource(["x"]),
                       "x.gathering(AxisIndices([0, 2], shape: [1, 2]), alongAxis: 1)")
        XCTAssertEqual(Clamp(lower: 0, upper: .infinity).swiftSource(["x"]), "clamp(x, lower: 0.0, upper: .infinity)")
        XCTAssertEqual(Select(mask: [true, false], maskShape: [2]).swiftSource(["a", "b"]),
                       "select(Tensor(shape: [2], scalars: [1.0, 0.0]), a, b)")
        // The spellings compile and agree with the ops.
        let y = Tensor(shape: [1, 3], scalars: [4, 5, 6])
        XCTAssertEqual(y.gathering(AxisIndices([0, 2], shape: [1, 2]), alongAxis: 1).scalars, [4, 6])
        XCTAssertEqual(select(Tensor(shape: [2], scalars: [1.0, 0.0]), Tensor([1, 2]), Tensor([3, 4])).scalars, [1, 4])
    }

    /// The model ops stage (their values, and the gradients whose rules do not read element values:
    /// convolution, average pooling, gather / scatter-add, select, log1p, expm1, cross-entropy), and the
    /// staged programs equal the eager functions.
    func testModelOpsStage() {
        let x = Self.input([2, 1, 4, 4]), w = Self.input([3, 1, 3, 3], offset: 1)
        let f: ([Tensor]) -> Tensor = { a in
            let h = avgPool2d(log1p(0.5 * conv2d(a[0], filter: a[1], padding: 1)), kernel: 2)
            let logits = expm1(h.reshaped(to: [2, 12]).gathering(AxisIndices([0, 5, 7, 0, 1, 11, 2, 3], shape: [2, 4]), alongAxis: 1))
            let shifted = select(Tensor([1, 0, 1, 1]), logits, logits.scatterAdding(AxisIndices([3, 2, 1, 0, 0, 1, 2, 3], shape: [2, 4]), alongAxis: 1, into: [2, 4]))
            return crossEntropy(logits: shifted, classIndices: [1, 3])
        }
        let program = stage(shapes: [x.shape, w.shape], f)
        XCTAssertEqual(program(x, w).scalar, f([x, w]).scalar, accuracy: 1e-14)
        let staged = program.gradient().outputs(at: [x, w]), eager = valueWithGradient(at: [x, w], of: f).gradients
        for (s, e) in zip(staged, eager) { XCTAssertTrue(s.isApproximatelyEqual(to: e, tolerance: 1e-13)) }
        let pooled = stage(shapes: [x.shape]) { a in maxPool2d(a[0], kernel: 2).maximum(alongAxis: 3).sum() }
        XCTAssertEqual(pooled(x).scalar, maxPool2d(x, kernel: 2).maximum(alongAxis: 3).sum().scalar, accuracy: 1e-14)
    }
}
