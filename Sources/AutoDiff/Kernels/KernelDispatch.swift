import CKernels

/// Which compiled variant of the C kernels runs: the widest instruction set of this CPU (AVX-512F, else
/// AVX2 with FMA, else the portable kernels; always portable on arm64), chosen once when the library
/// loads, or the portable kernels when the environment variable `HYPERGRADIENT_KERNELS=portable` is set
/// (`avx2` selects AVX2 on an AVX-512 machine).
///
/// Determinism: for one machine, instruction set and thread count every kernel sums in a fixed order,
/// so results repeat bit for bit; the matrix kernels do not even depend on the thread count. Across
/// instruction sets the last bits may differ (fused multiply-adds round once instead of twice, and the
/// vector width changes how a dot product's lanes are added). The portable kernels never fuse, so they
/// give the same bits on every machine.
public enum KernelDispatch {
    /// An instruction set the kernels are compiled for.
    public enum InstructionSet: Int32, CaseIterable, Sendable {
        /// Two-double vectors, no fused multiply-add (any x86-64 or arm64 CPU).
        case portable = 0
        /// Four-double vectors with fused multiply-adds.
        case avx2 = 1
        /// Eight-double vectors with fused multiply-adds.
        case avx512 = 2
    }

    /// The widest instruction set this CPU runs.
    public static var best: InstructionSet { InstructionSet(rawValue: ckernels_best_isa())! }

    /// The instruction set in use; setting it (clamped to `best`) is for tests that compare the paths in
    /// one process, and must not race with running kernels.
    public static var active: InstructionSet {
        get { InstructionSet(rawValue: ckernels_active_isa())! }
        set { _ = ckernels_set_isa(newValue.rawValue) }
    }

    /// Runs `body` with the kernels switched to `isa`, then restores the previous choice.
    public static func with<Result>(_ isa: InstructionSet, _ body: () throws -> Result) rethrows -> Result {
        let previous = active
        active = isa
        defer { active = previous }
        return try body()
    }
}
