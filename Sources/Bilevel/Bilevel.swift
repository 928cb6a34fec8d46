// The Bilevel module: hypergradient methods on the AutoDiff engine.
@_exported import AutoDiff
