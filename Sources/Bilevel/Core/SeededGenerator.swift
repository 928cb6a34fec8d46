import Foundation

/// A small, fast, seeded random number generator (xoshiro256**, Blackman & Vigna 2018), so every
/// stochastic method is reproducible from its seed on every platform.
///
/// The 256-bit state is filled from the 64-bit seed by SplitMix64, as the xoshiro authors recommend.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose whole stream is determined by `seed`.
    public init(seed: UInt64) {
        var z = seed
        func splitMix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var r = z
            r = (r ^ (r >> 30)) &* 0xBF58_476D_1CE4_E5B9
            r = (r ^ (r >> 27)) &* 0x94D0_49BB_1331_11EB
            return r ^ (r >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// A uniform double in `[0, 1)` from the top 53 bits.
    public mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A standard normal sample (Box–Muller; one of the pair is discarded to keep the stream simple).
    public mutating func nextNormal() -> Double {
        let u1 = Swift.max(nextUniform(), Double.leastNonzeroMagnitude)
        let u2 = nextUniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// A tensor of the given shape with independent standard normal entries.
    public mutating func normal(shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in nextNormal() })
    }

    /// `count` distinct indices drawn uniformly from `0..<population` (a partial Fisher–Yates shuffle).
    public mutating func sample(_ count: Int, from population: Int) -> [Int] {
        // A caller's bug (methods validate batch sizes first): stop with the message in every build.
        guard count >= 0 && count <= population else { fatalError("sample: cannot draw \(count) distinct indices from \(population)") }
        var pool = Array(0..<population)
        for i in 0..<count { pool.swapAt(i, i + Int(next() % UInt64(population - i))) }
        return Array(pool[..<count])
    }
}
