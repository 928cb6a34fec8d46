import Bilevel
import Foundation

/// One N-way K-shot classification task: a support set the learner adapts on and a query set it is
/// scored on, images `[count, 1, S, S]` with class indices `0..<ways` (class-major order).
struct GlyphTask {
    /// Support images `[ways·shots, 1, S, S]`.
    let supportImages: Tensor
    /// Support class indices.
    let supportLabels: [Int]
    /// Query images `[ways·queries, 1, S, S]`.
    let queryImages: Tensor
    /// Query class indices.
    let queryLabels: [Int]
}

/// A reproducible stream of few-shot tasks over synthetic stroke glyphs (Omniglot-like): every task draws
/// `ways` brand-new glyph classes, each a few random straight strokes on an `S × S` grid; every example
/// of a class redraws its glyph with jittered stroke end points, a small random shift and pixel noise.
/// All draws come from one `SeededGenerator`, so a seed fixes the whole stream.
struct GlyphTaskSampler {
    /// The generator every draw comes from.
    private var generator: SeededGenerator
    /// Image side S.
    let size: Int
    /// Classes per task (N).
    let ways: Int
    /// Support examples per class (K).
    let shots: Int
    /// Query examples per class.
    let queries: Int
    /// Strokes per glyph.
    let strokes = 3

    /// A sampler whose whole task stream is fixed by `seed`.
    init(seed: UInt64, size: Int, ways: Int, shots: Int, queries: Int) {
        generator = SeededGenerator(seed: seed)
        self.size = size
        self.ways = ways
        self.shots = shots
        self.queries = queries
    }

    /// The next task: `ways` fresh glyphs, `shots` support and `queries` query examples of each.
    mutating func next() -> GlyphTask {
        let glyphs = (0..<ways).map { _ in randomGlyph() }
        let support = images(of: glyphs, each: shots), query = images(of: glyphs, each: queries)
        return GlyphTask(supportImages: support.images, supportLabels: support.labels,
                         queryImages: query.images, queryLabels: query.labels)
    }

    /// The next `count` tasks.
    mutating func next(_ count: Int) -> [GlyphTask] { (0..<count).map { _ in next() } }

    /// A glyph: `strokes` segments with end points uniform in `[1, S − 1]²` (pixel units).
    private mutating func randomGlyph() -> [(Double, Double, Double, Double)] {
        let span = Double(size - 2)
        return (0..<strokes).map { _ in
            (1 + span * generator.nextUniform(), 1 + span * generator.nextUniform(),
             1 + span * generator.nextUniform(), 1 + span * generator.nextUniform())
        }
    }

    /// `each` examples of every glyph, class-major, with their labels.
    private mutating func images(of glyphs: [[(Double, Double, Double, Double)]], each: Int) -> (images: Tensor, labels: [Int]) {
        var pixels: [Double] = [], labels: [Int] = []
        for (label, glyph) in glyphs.enumerated() {
            for _ in 0..<each {
                pixels += render(glyph)
                labels.append(label)
            }
        }
        return (Tensor(shape: [labels.count, 1, size, size], scalars: pixels), labels)
    }

    /// One example of `glyph`: end points jittered by N(0, 0.35²), the whole glyph shifted by N(0, 0.4²)
    /// per axis, each stroke drawn as `exp(−d²/(2·0.6²))` of the distance d to the segment (the maximum
    /// over strokes), plus N(0, 0.05²) pixel noise.
    private mutating func render(_ glyph: [(Double, Double, Double, Double)]) -> [Double] {
        let shiftX = 0.4 * generator.nextNormal(), shiftY = 0.4 * generator.nextNormal()
        let segments = glyph.map { s in
            (s.0 + shiftX + 0.35 * generator.nextNormal(), s.1 + shiftY + 0.35 * generator.nextNormal(),
             s.2 + shiftX + 0.35 * generator.nextNormal(), s.3 + shiftY + 0.35 * generator.nextNormal())
        }
        var image = [Double](repeating: 0, count: size * size)
        for row in 0..<size {
            for column in 0..<size {
                let (px, py) = (Double(column) + 0.5, Double(row) + 0.5)
                var ink = 0.0
                for (x0, y0, x1, y1) in segments {
                    let (dx, dy) = (x1 - x0, y1 - y0)
                    let t = Swift.min(1, Swift.max(0, ((px - x0) * dx + (py - y0) * dy) / Swift.max(dx * dx + dy * dy, 1e-12)))
                    let (ex, ey) = (px - x0 - t * dx, py - y0 - t * dy)
                    ink = Swift.max(ink, Foundation.exp(-(ex * ex + ey * ey) / (2 * 0.36)))
                }
                image[row * size + column] = ink + 0.05 * generator.nextNormal()
            }
        }
        return image
    }
}
