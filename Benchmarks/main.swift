import CommandLineOptions
import Foundation

// bench: times every engine transform and hypergradient method on the workloads of
// Docs/workloads.md, and prints a table (and optionally CSV and an SVG chart).

let options = parseCommandLine(program: "bench", usage: Options.usage, Options.init)

var bench = Bench(options: options)
do {
    KernelSuite.run(&bench)
    EngineSuite.run(&bench)
    try BilevelSuite.run(&bench)
    StagedSuite.run(&bench)
    try BatchingSuite.run(&bench)
    try StagedBilevelSuite.run(&bench)
    try ConstrainedSuite.run(&bench)
    try FirstOrderSuite.run(&bench)
    try FidelitySuiteA.run(&bench)
    try FidelitySuiteB.run(&bench)
} catch {
    FileHandle.standardError.write("bench: a workload failed: \(error)\n".data(using: .utf8)!)
    exit(1)
}

if let error = options.emptySelectionError(rowCount: bench.rows.count) {
    FileHandle.standardError.write("bench: \(error.message)\n".data(using: .utf8)!)
    exit(1)
}
print(bench.table)
for note in bench.notes { print(note) }
do {
    if let path = options.csvPath { try bench.csv.write(toFile: path, atomically: true, encoding: .utf8) }
    if let path = options.svgPath { try UnrolledChart.svg(from: bench.rows).write(toFile: path, atomically: true, encoding: .utf8) }
} catch {
    FileHandle.standardError.write("bench: cannot write output: \(error)\n".data(using: .utf8)!)
    exit(1)
}
