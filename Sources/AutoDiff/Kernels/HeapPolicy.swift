/// How the engine asks the C allocator to treat large tensor buffers (Linux/glibc only).
///
/// Every op allocates a fresh output buffer. With glibc's defaults, buffers above 128 kB are mapped and
/// unmapped one by one, and the top of the heap is handed back to the kernel whenever more than a few
/// megabytes are free, so a loop of large element-wise ops pays a page fault per 4 kB page on every op
/// (measured: Rosenbrock at n = 10⁵ spent 87 % of its time in page faults, 4.1 ms against 0.53 ms). The
/// first time a tensor of at least `largeCount` elements is created, the engine raises glibc's mmap
/// threshold to 32 MB and its trim threshold to 256 MB, so freed buffers are reused from the heap. The
/// price is that up to 256 MB of freed heap may stay resident; `malloc_trim(0)` hands it back on demand.
/// Programs that never create a large tensor are left untouched, and so are programs that set either
/// threshold themselves through `GLIBC_TUNABLES` (glibc then keeps the user's value for the tunable
/// that was set, and `mallopt` would override it, so the engine leaves both alone).
enum HeapPolicy {
    /// Tensors of at least this many elements (128 kB) trigger the policy.
    static let largeCount = 1 << 14

    /// Installs the thresholds once (a lazily initialised global: thread-safe, run at most once).
    /// `true` when glibc accepted both thresholds.
    static let installed: Bool = {
        #if os(Linux)
        if let tunables = getenv("GLIBC_TUNABLES").map({ String(cString: $0) }),
           tunables.contains("mmap_threshold") || tunables.contains("trim_threshold") {
            return false
        }
        let mmapAccepted = setMallocOption(mmapThresholdParameter, 32 << 20) == 1
        let trimAccepted = setMallocOption(trimThresholdParameter, 256 << 20) == 1
        return mmapAccepted && trimAccepted
        #else
        return false
        #endif
    }()
}

#if os(Linux)
import Glibc

/// glibc's `M_TRIM_THRESHOLD` parameter number for `mallopt` (malloc.h; not exported by the Glibc module).
private let trimThresholdParameter: Int32 = -1
/// glibc's `M_MMAP_THRESHOLD` parameter number for `mallopt` (malloc.h).
private let mmapThresholdParameter: Int32 = -3

/// glibc's `mallopt(parameter, value)`; returns 1 on success (not exported by the Glibc module).
@_silgen_name("mallopt")
private func setMallocOption(_ parameter: Int32, _ value: Int32) -> Int32
#endif
