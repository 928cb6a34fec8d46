// Two-dimensional convolution (cross-correlation, as in every deep-learning library) over NCHW inputs
// with OIHW filters, and its two adjoints. The three are the partial derivatives of one trilinear form
//
//     T(x, w, g) = ⟨conv(x, w), g⟩:   conv = ∂T/∂g,   convTranspose(g, w) = ∂T/∂x,   filterGradient(x, g) = ∂T/∂w,
//
// so each one's JVP and VJP are the other two: a closed set that is differentiable to any order.
// Values run as im2col + the matrix-product kernel.

/// A two-input primitive linear in each input separately, `y = B(a, b)`, whose JVP is therefore
/// `ẏ = B(ȧ, b) + B(a, ḃ)`: conformers write only the value and the two VJP rules.
public protocol BilinearPrimitive: BinaryPrimitive {}

extension BilinearPrimitive {
    /// `B(ȧ, b)`.
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { self(t, b) }
    /// `B(a, ḃ)`.
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { self(a, t) }
}

/// The window of a convolution or pooling: kernel extent, stride and zero padding (same on both axes of
/// the padding and stride, per spatial axis of the kernel), with the output extents it produces.
public struct ConvolutionWindow: Hashable, Sendable {
    /// Kernel height and width.
    public var kernelHeight: Int, kernelWidth: Int
    /// The step between windows (both spatial axes).
    public var stride: Int
    /// Zeros added on every side (both spatial axes).
    public var padding: Int

    /// A window of `kernelHeight × kernelWidth` moved by `stride` over an input padded by `padding`.
    public init(kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int) {
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
    }

    /// `⌊(extent + 2·padding − kernel) / stride⌋ + 1` along each axis.
    func outputExtents(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelHeight) / stride + 1, (width + 2 * padding - kernelWidth) / stride + 1)
    }

    /// Stops unless the window has positive kernel and stride, non-negative padding, and fits an input of
    /// `shape` (`[N, C, H, W]`) at least once; `op` and the shape are named.
    func check(input shape: [Int], op: String) {
        engineCheck(
            kernelHeight >= 1 && kernelWidth >= 1 && stride >= 1 && padding >= 0,
            "\(AutoDiffError.invalidArgument(op: op, reason: "kernel \(kernelHeight)×\(kernelWidth) and stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0"))")
        engineCheck(shape.count == 4, "\(AutoDiffError.invalidArgument(op: op, reason: "the input must be [N, C, H, W], got shape \(shape)"))")
        engineCheck(
            shape[2] + 2 * padding >= kernelHeight && shape[3] + 2 * padding >= kernelWidth,
            "\(AutoDiffError.invalidArgument(op: op, reason: "a \(kernelHeight)×\(kernelWidth) window does not fit the input \(shape) padded by \(padding)"))")
    }

    /// The columns `[C·kh·kw, Ho·Wo]` of one image `[C, H, W]` at `image` (im2col), zero where padded.
    func columns(_ image: UnsafePointer<Double>, channels: Int, height: Int, width: Int, into out: UnsafeMutablePointer<Double>) {
        let (oh, ow) = outputExtents(height: height, width: width)
        let positions = oh * ow
        for c in 0..<channels {
            for i in 0..<kernelHeight {
                for j in 0..<kernelWidth {
                    let row = out + ((c * kernelHeight + i) * kernelWidth + j) * positions
                    for oy in 0..<oh {
                        let y = oy * stride - padding + i
                        for ox in 0..<ow {
                            let x = ox * stride - padding + j
                            row[oy * ow + ox] = y >= 0 && y < height && x >= 0 && x < width ? image[(c * height + y) * width + x] : 0
                        }
                    }
                }
            }
        }
    }

    /// Runs `body(n, columns)` for every image `n` of `x` `[N, C, H, W]`, with `columns` its im2col
    /// `[C·kh·kw, Ho·Wo]` (one buffer, refilled for each image).
    func forEachImageColumns(of x: Tensor, _ body: (Int, UnsafePointer<Double>) -> Void) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = outputExtents(height: h, width: w)
        var buffer = [Double](repeating: 0, count: c * kernelHeight * kernelWidth * oh * ow)
        x.scalars.withUnsafeBufferPointer { px in
            buffer.withUnsafeMutableBufferPointer { pc in
                for image in 0..<n {
                    columns(px.baseAddress! + image * c * h * w, channels: c, height: h, width: w, into: pc.baseAddress!)
                    body(image, pc.baseAddress!)
                }
            }
        }
    }

    /// Adds columns `[C·kh·kw, Ho·Wo]` back onto one image `[C, H, W]` (col2im, the adjoint of `columns`).
    func addColumns(_ columns: UnsafePointer<Double>, channels: Int, height: Int, width: Int, into image: UnsafeMutablePointer<Double>) {
        let (oh, ow) = outputExtents(height: height, width: width)
        let positions = oh * ow
        for c in 0..<channels {
            for i in 0..<kernelHeight {
                for j in 0..<kernelWidth {
                    let row = columns + ((c * kernelHeight + i) * kernelWidth + j) * positions
                    for oy in 0..<oh {
                        let y = oy * stride - padding + i
                        guard y >= 0 && y < height else { continue }
                        for ox in 0..<ow {
                            let x = ox * stride - padding + j
                            if x >= 0 && x < width { image[(c * height + y) * width + x] += row[oy * ow + ox] }
                        }
                    }
                }
            }
        }
    }
}

/// The 2-D convolution (cross-correlation) of `input` `[N, C, H, W]` with `filter` `[O, C, kh, kw]`,
/// plus an optional `bias` `[O]`:
///
///     y[n, o, i, j] = b[o] + Σ_{c, p, q} w[o, c, p, q] · x[n, c, i·s − pad + p, j·s − pad + q]
///
/// (zero outside the input), of shape `[N, O, Ho, Wo]` with `Ho = ⌊(H + 2 pad − kh)/s⌋ + 1`.
/// Derivatives: the transposed convolution for `x̄`, the input–adjoint correlation for `w̄`, the sum of
/// `ȳ` over `N, Ho, Wo` for `b̄`.
///
/// - Precondition: ranks 4 and 4 (and 1 for the bias), matching channels, a window that fits.
public func conv2d(_ input: Tensor, filter: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
    let op = "conv2d(stride: \(stride), padding: \(padding))"
    engineCheck(
        input.rank == 4 && filter.rank == 4 && input.shape[1] == filter.shape[1],
        "\(AutoDiffError.shapeMismatch(op: op, lhs: input.shape, rhs: filter.shape, reason: "the input must be [N, C, H, W] and the filter [O, C, kh, kw] with the same C"))")
    let window = ConvolutionWindow(kernelHeight: filter.shape[2], kernelWidth: filter.shape[3], stride: stride, padding: padding)
    window.check(input: input.shape, op: op)
    let y = Conv2D(window: window)(input, filter)
    guard let bias else { return y }
    engineCheck(
        bias.shape == [filter.shape[0]],
        "\(AutoDiffError.shapeMismatch(op: op, lhs: filter.shape, rhs: bias.shape, reason: "the bias must be [O] for a filter [O, C, kh, kw]"))")
    return y + bias.reshaped(to: [1, filter.shape[0], 1, 1])
}

/// The primitive behind `conv2d`: `y = conv(x, w)`; bilinear, so `ẏ = conv(ẋ, w) + conv(x, ẇ)`,
/// `x̄ = convTranspose(ȳ, w)`, `w̄ = filterGradient(x, ȳ)`.
public struct Conv2D: BilinearPrimitive {
    /// Kernel, stride and padding.
    public var window: ConvolutionWindow

    /// The convolution over `window` (checked by `conv2d`).
    public init(window: ConvolutionWindow) { self.window = window }

    /// `"conv2d"`.
    public var name: String { "conv2d" }
    /// `[N, O, Ho, Wo]`.
    public func outputShape(_ x: [Int], _ w: [Int]) -> [Int] {
        let (oh, ow) = window.outputExtents(height: x[2], width: x[3])
        return [x[0], w[0], oh, ow]
    }
    /// Per image: im2col, then `w [O, C·kh·kw] · columns`.
    public func value(_ x: Tensor, _ w: Tensor) -> Tensor {
        let shape = outputShape(x.shape, w.shape)
        let rows = x.shape[1] * window.kernelHeight * window.kernelWidth, positions = shape[2] * shape[3], o = w.shape[0]
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        w.scalars.withUnsafeBufferPointer { pw in
            out.withUnsafeMutableBufferPointer { po in
                window.forEachImageColumns(of: x) { image, columns in
                    MatmulKernel.gemm(
                        transposeA: false, transposeB: false, m: o, n: positions, k: rows,
                        a: pw.baseAddress!, b: columns, c: po.baseAddress! + image * o * positions)
                }
            }
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }
    /// `convTranspose(ȳ, w)`.
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        Conv2DTranspose(window: window, height: a.shape[2], width: a.shape[3])(g, b)
    }
    /// `filterGradient(x, ȳ)`.
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { Conv2DFilterGradient(window: window)(a, g) }
    /// `conv2d(x, filter: w, stride: …, padding: …)`.
    public func swiftSource(_ a: String, _ b: String) -> String {
        "conv2d(\(a), filter: \(b), stride: \(window.stride), padding: \(window.padding))"
    }
}

/// The transposed convolution `z = convTranspose(g, w)` `[N, C, H, W]` of `g` `[N, O, Ho, Wo]`: the
/// adjoint of `conv(·, w)`, `⟨conv(x, w), g⟩ = ⟨x, convTranspose(g, w)⟩`. Bilinear:
/// `ż = convTranspose(ġ, w) + convTranspose(g, ẇ)`, `ḡ = conv(z̄, w)`, `w̄ = filterGradient(z̄, g)`.
public struct Conv2DTranspose: BilinearPrimitive {
    /// Kernel, stride and padding of the convolution this is the adjoint of.
    public var window: ConvolutionWindow
    /// The spatial extents of the result (the convolution's input), which the output extents alone do
    /// not determine when the stride does not divide evenly.
    public var height: Int, width: Int

    /// The adjoint of the convolution over `window` on inputs of `height × width`.
    public init(window: ConvolutionWindow, height: Int, width: Int) {
        self.window = window
        self.height = height
        self.width = width
    }

    /// `"conv2dTranspose"`.
    public var name: String { "conv2dTranspose" }
    /// `[N, C, H, W]`.
    public func outputShape(_ g: [Int], _ w: [Int]) -> [Int] { [g[0], w[1], height, width] }
    /// Per image: `wᵀ · g` into columns, then col2im.
    public func value(_ g: Tensor, _ w: Tensor) -> Tensor {
        let shape = outputShape(g.shape, w.shape)
        let (n, c, o) = (g.shape[0], w.shape[1], w.shape[0])
        let rows = c * window.kernelHeight * window.kernelWidth, positions = g.shape[2] * g.shape[3]
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        var columns = [Double](repeating: 0, count: rows * positions)
        g.scalars.withUnsafeBufferPointer { pg in
            w.scalars.withUnsafeBufferPointer { pw in
                columns.withUnsafeMutableBufferPointer { pc in
                    out.withUnsafeMutableBufferPointer { po in
                        for image in 0..<n {
                            MatmulKernel.gemm(
                                transposeA: true, transposeB: false, m: rows, n: positions, k: o,
                                a: pw.baseAddress!, b: pg.baseAddress! + image * o * positions, c: pc.baseAddress!)
                            window.addColumns(
                                pc.baseAddress!, channels: c, height: height, width: width,
                                into: po.baseAddress! + image * c * height * width)
                        }
                    }
                }
            }
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }
    /// `conv(z̄, w)`.
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { Conv2D(window: window)(g, b) }
    /// `filterGradient(z̄, g)`.
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { Conv2DFilterGradient(window: window)(g, a) }
    /// The transposed convolution, spelled through its primitive.
    public func swiftSource(_ a: String, _ b: String) -> String {
        "Conv2DTranspose(window: \(window), height: \(height), width: \(width))(\(a), \(b))"
    }
}

/// The filter gradient `v = filterGradient(x, g)` `[O, C, kh, kw]` of an input `x` `[N, C, H, W]` and an
/// output adjoint `g` `[N, O, Ho, Wo]`: `⟨conv(x, w), g⟩ = ⟨w, filterGradient(x, g)⟩`. Bilinear:
/// `v̇ = filterGradient(ẋ, g) + filterGradient(x, ġ)`, `x̄ = convTranspose(g, v̄)`, `ḡ = conv(x, v̄)`.
public struct Conv2DFilterGradient: BilinearPrimitive {
    /// Kernel, stride and padding of the convolution whose filter gradient this is.
    public var window: ConvolutionWindow

    /// The filter gradient of the convolution over `window`.
    public init(window: ConvolutionWindow) { self.window = window }

    /// `"conv2dFilterGradient"`.
    public var name: String { "conv2dFilterGradient" }
    /// `[O, C, kh, kw]`.
    public func outputShape(_ x: [Int], _ g: [Int]) -> [Int] { [g[1], x[1], window.kernelHeight, window.kernelWidth] }
    /// `Σ_n g[n] [O, Ho·Wo] · columns(x[n])ᵀ`.
    public func value(_ x: Tensor, _ g: Tensor) -> Tensor {
        let shape = outputShape(x.shape, g.shape)
        let o = g.shape[1], rows = x.shape[1] * window.kernelHeight * window.kernelWidth, positions = g.shape[2] * g.shape[3]
        var out = [Double](repeating: 0, count: o * rows), part = out
        g.scalars.withUnsafeBufferPointer { pg in
            part.withUnsafeMutableBufferPointer { pp in
                window.forEachImageColumns(of: x) { image, columns in
                    MatmulKernel.gemm(
                        transposeA: false, transposeB: true, m: o, n: rows, k: positions,
                        a: pg.baseAddress! + image * o * positions, b: columns, c: pp.baseAddress!)
                    for i in 0..<(o * rows) { out[i] += pp[i] }
                }
            }
        }
        return Tensor(shape: shape, scalars: out, trace: nil)
    }
    /// `convTranspose(g, v̄)`.
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        Conv2DTranspose(window: window, height: a.shape[2], width: a.shape[3])(b, g)
    }
    /// `conv(x, v̄)`.
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { Conv2D(window: window)(a, g) }
    /// The filter gradient, spelled through its primitive.
    public func swiftSource(_ a: String, _ b: String) -> String {
        "Conv2DFilterGradient(window: \(window))(\(a), \(b))"
    }
}
