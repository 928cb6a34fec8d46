// Max and average pooling over the spatial axes of NCHW tensors.

/// The maximum over each `kernel × kernel` window moved by `stride` (default: `kernel`) over `input`
/// `[N, C, H, W]` padded by `padding` (padding never wins: it counts as −∞), of shape `[N, C, Ho, Wo]`.
/// The derivative flows to the first maximal element of each window: with `i*` the argmax positions
/// (constants), `ẏ = gather(ẋ, i*)` and `x̄ = scatterAdd(ȳ, i*)` over each flattened `H·W` plane.
///
/// - Precondition: `input` is rank 4; `kernel, stride ≥ 1`; `0 ≤ padding ≤ kernel / 2` (so every window
///   holds an input element); the window fits.
public func maxPool2d(_ input: Tensor, kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    let window = poolingWindow(input, kernel: kernel, stride: stride, padding: padding, op: "maxPool2d")
    return MaxPool2D(window: window)(input)
}

/// The mean over each `kernel × kernel` window moved by `stride` (default: `kernel`) over `input`
/// `[N, C, H, W]` padded by zeros (`padding`), dividing by `kernel²` whether or not the window overlaps
/// the padding (PyTorch's `count_include_pad`). Linear: it is the convolution of every channel with the
/// constant filter `1/kernel²`, so its derivatives are that convolution's.
///
/// - Precondition: as `maxPool2d`.
public func avgPool2d(_ input: Tensor, kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    let window = poolingWindow(input, kernel: kernel, stride: stride, padding: padding, op: "avgPool2d")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let filter = Tensor(repeating: 1 / Double(kernel * kernel), shape: [1, 1, kernel, kernel])
    let y = Conv2D(window: window)(input.reshaped(to: [n * c, 1, h, w]), filter)
    return y.reshaped(to: [n, c, y.shape[2], y.shape[3]])
}

/// The checked window of a pooling op.
private func poolingWindow(_ input: Tensor, kernel: Int, stride: Int?, padding: Int, op: String) -> ConvolutionWindow {
    let window = ConvolutionWindow(kernelHeight: kernel, kernelWidth: kernel, stride: stride ?? kernel, padding: padding)
    let name = "\(op)(kernel: \(kernel), stride: \(window.stride), padding: \(padding))"
    window.check(input: input.shape, op: name)
    engineCheck(
        2 * padding <= kernel,
        "\(AutoDiffError.invalidArgument(op: name, reason: "padding must be at most kernel / 2, so every window holds an input element (input shape \(input.shape))"))")
    return window
}

/// The primitive behind `maxPool2d`: `y` = the window maxima; `ẏ = gather(ẋ, i*)`, `x̄ = scatterAdd(ȳ, i*)`
/// with the argmax positions `i*` held constant.
public struct MaxPool2D: UnaryPrimitive {
    /// Kernel, stride and padding.
    public var window: ConvolutionWindow

    /// Max pooling over `window` (checked by `maxPool2d`).
    public init(window: ConvolutionWindow) { self.window = window }

    /// `"maxPool2d"`.
    public var name: String { "maxPool2d" }
    /// `[N, C, Ho, Wo]`.
    public func outputShape(_ shape: [Int]) -> [Int] {
        let (oh, ow) = window.outputExtents(height: shape[2], width: shape[3])
        return [shape[0], shape[1], oh, ow]
    }
    /// The window maxima, gathered at the argmax positions.
    public func value(_ x: Tensor) -> Tensor {
        Gather(axis: 1, indices: argmax(x)).value(planes(x)).reshaped(to: outputShape(x.shape))
    }
    /// `gather(ẋ, i*)`.
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor {
        Gather(axis: 1, indices: argmax(x))(planes(t)).reshaped(to: y.shape)
    }
    /// `scatterAdd(ȳ, i*)` into `x`'s shape.
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor {
        let indices = argmax(x)
        return ScatterAdd(axis: 1, indices: indices, targetShape: [x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]])(
            g.reshaped(to: indices.shape)
        ).reshaped(to: x.shape)
    }
    /// `maxPool2d(x, kernel: …, stride: …, padding: …)`.
    public func swiftSource(_ x: String) -> String {
        "maxPool2d(\(x), kernel: \(window.kernelHeight), stride: \(window.stride), padding: \(window.padding))"
    }

    /// `x` `[N, C, H, W]` viewed as `[N·C, H·W]`.
    private func planes(_ x: Tensor) -> Tensor { x.reshaped(to: [x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]]) }

    /// The flat in-plane position (`y·W + x`) of the first maximum of every window, `[N·C, Ho·Wo]`.
    private func argmax(_ x: Tensor) -> AxisIndices {
        let (planeCount, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = window.outputExtents(height: h, width: w)
        var out = [Int](repeating: 0, count: planeCount * oh * ow)
        x.scalars.withUnsafeBufferPointer { src in
            for plane in 0..<planeCount {
                let base = plane * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var best = -1, bestValue = -Double.infinity
                        for i in 0..<window.kernelHeight {
                            let y = oy * window.stride - window.padding + i
                            guard y >= 0 && y < h else { continue }
                            for j in 0..<window.kernelWidth {
                                let xx = ox * window.stride - window.padding + j
                                guard xx >= 0 && xx < w else { continue }
                                let v = src[base + y * w + xx]
                                if best < 0 || v > bestValue || v.isNaN {
                                    best = y * w + xx
                                    bestValue = v
                                    if v.isNaN { break }
                                }
                            }
                        }
                        out[(plane * oh + oy) * ow + ox] = best
                    }
                }
            }
        }
        return AxisIndices(out, shape: [planeCount, oh * ow])
    }
}
