import Bilevel
import CommandLineOptions
import Foundation
import MetaLearningSupport

// fewshot: 5-way 1-shot and 5-shot classification of synthetic stroke glyphs with a small convolutional
// network, meta-trained four ways (FO-MAML, Sign-MAML, MAML, iMAML) from one seeded initialisation on one
// seeded task stream, then scored on held-out tasks. See Docs/fewshot.md.

/// The command line of `fewshot`: the shared meta-learning options and the number of held-out tasks.
struct Options {
    /// `--iterations` (per learner and setting), `--seed`, `--check`.
    var common: MetaLearningOptions
    /// The default of `testTasks`.
    static let defaultTestTasks = 200
    /// Held-out tasks per setting.
    var testTasks = Options.defaultTestTasks

    /// The help text.
    static let usage = MetaLearningOptions.usage(
        program: "fewshot", extraSynopsis: " [--tasks <n>]", iterationsPer: "learner and setting",
        defaultIterations: FewShotConfig().iterations,
        extraLines: "  --tasks <n>       held-out meta-test tasks per setting, n ≥ 1 (default \(defaultTestTasks))\n",
        checkDescription: """
            compare the MAML meta-gradient of one task batch with central finite
                                differences; prints the relative error and exits 1 if it exceeds 1e-6
            """)

    /// Parses `arguments` (without the program name).
    ///
    /// - Throws: `OptionsError` naming the offending argument, or `OptionsError.help`.
    init(_ arguments: [String]) throws {
        var testTasks = Options.defaultTestTasks
        common = try MetaLearningOptions(arguments, defaultIterations: FewShotConfig().iterations) { argument, scanner in
            guard argument == "--tasks" else { return false }
            testTasks = try scanner.positiveInteger(for: argument)
            return true
        }
        self.testTasks = testTasks
    }
}

/// The parsed command line (bad arguments exit with status 2 before anything runs).
let options = parseCommandLine(program: "fewshot", usage: Options.usage, Options.init), common = options.common

do {
    if common.check { exit(try GradientCheck.run(seed: common.seed) ? 0 : 1) }

    var config = FewShotConfig()
    config.iterations = common.iterations
    let network = config.network, ways = network.ways, shotCounts = [1, 5]
    // Streams: the initialisation from `seed`; for K shots, meta-training tasks from `seed + K` (the same
    // stream for every learner) and held-out tasks from `seed + 100 + K`.
    var initGenerator = SeededGenerator(seed: common.seed)
    let theta0 = network.initialParameters(using: &initGenerator)
    print("""
        Few-shot glyph classification: \(ways)-way, \(network.size)×\(network.size) images, conv net \
        [conv3×3(\(network.channels.0))-tanh-maxpool2, conv3×3(\(network.channels.1))-tanh-maxpool2, dense] \
        (\(network.parameterCount) parameters), \(config.queries) query images per class
        meta-training: \(config.iterations) iterations × \(config.metaBatch) tasks, Adam step \(config.metaStep); \
        inner: \(config.innerSteps) step(s) α = \(config.innerStep) (sign step \(config.signStep)); \
        iMAML: λ = \(config.proximalWeight), \(config.implicitInnerSteps) inner steps, CG ≤ \(config.conjugateGradientIterations) iterations; seed \(common.seed)
        meta-test: \(options.testTasks) held-out tasks per setting, accuracy after the learner's own inner loop
        """)
    var cells: [String: (accuracy: (mean: Double, halfWidth: Double), seconds: Double?)] = [:]
    for shots in shotCounts {
        var testSampler = GlyphTaskSampler(seed: common.seed &+ 100 &+ UInt64(shots), size: network.size, ways: ways, shots: shots, queries: config.queries)
        let testTasks = testSampler.next(options.testTasks)
        let trainSampler = GlyphTaskSampler(seed: common.seed &+ UInt64(shots), size: network.size, ways: ways, shots: shots, queries: config.queries)
        cells["untrained \(shots)"] = (try metaTestAccuracy(of: theta0, on: testTasks, learner: .maml, config: config), nil)
        for learner in MetaLearner.allCases {
            let (theta, seconds) = try metaTrain(learner, from: theta0, sampler: trainSampler, config: config)
            cells["\(learner.name) \(shots)"] = (try metaTestAccuracy(of: theta, on: testTasks, learner: learner, config: config), seconds)
            printError("fewshot: \(learner.name) \(ways)-way \(shots)-shot meta-trained in \(String(format: "%.1f", seconds)) s")
        }
    }
    let rows = [("no meta-training", "-", "untrained")] + MetaLearner.allCases.map { ($0.name, $0.solver, $0.name) }
    printTable(
        header: pad("Method", 18, left: true) + pad("hypergradient", 18, left: true)
            + shotCounts.map { pad("\(ways)-way \($0)-shot acc. (%)", 24) + pad("time (s)", 10) }.joined(),
        rows: rows.map { label, solver, key in
            pad(label, 18, left: true) + pad(solver, 18, left: true) + shotCounts.map { shots in
                let cell = cells["\(key) \(shots)"]!
                return pad(String(format: "%.2f ± %.2f", 100 * cell.accuracy.mean, 100 * cell.accuracy.halfWidth), 24)
                    + pad(cell.seconds.map { String(format: "%.1f", $0) } ?? "-", 10)
            }.joined()
        })
    print("(query accuracy: mean ± 95% confidence half-width over the \(options.testTasks) held-out tasks; chance is \(100 / ways)%)")
} catch {
    printError("fewshot: \(error)")
    exit(1)
}
