import Bilevel
import CommandLineOptions
import Foundation

// maml: few-shot sinusoid regression (Finn et al. 2017) meta-trained three ways (second-order MAML,
// first-order MAML, Sign-MAML) from one seeded initialisation on one seeded task stream, then scored on
// held-out tasks. See Docs/maml.md.

/// The command line of `maml`.
struct Options {
    /// Meta-iterations per method.
    var iterations = MetaConfig().iterations
    /// The seed every random stream derives from.
    var seed: UInt64 = 2017
    /// Run the meta-gradient self-test instead of training.
    var check = false

    /// The help text.
    static let usage = """
        usage: maml [--iterations <n>] [--seed <s>] [--check] [--help]

          --iterations <n>  meta-iterations (Adam steps) per method, n ≥ 1 (default \(MetaConfig().iterations))
          --seed <s>        seed of the initialisation and of the task streams, 0 ≤ s < 2^64 (default 2017)
          --check           compare the MAML meta-gradient with central finite differences on a tiny
                            network; prints the relative error and exits 1 if it exceeds 1e-6
          --help            print this help
        """

    /// Parses `arguments` (without the program name).
    ///
    /// - Throws: `OptionsError` naming the offending argument, or `OptionsError.help`.
    init(_ arguments: [String]) throws {
        var scanner = ArgumentScanner(arguments)
        while let argument = try scanner.next() {
            switch argument {
            case "--iterations": iterations = try scanner.positiveInteger(for: argument)
            case "--seed":
                let text = try scanner.value(for: argument)
                guard let s = UInt64(text) else { throw OptionsError("--seed needs a whole number in 0..<2^64, got '\(text)'") }
                seed = s
            case "--check": check = true
            default: throw OptionsError("unknown option '\(argument)'")
            }
        }
    }
}

/// Writes `text` and a newline to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

/// One row of the results table.
struct ResultRow {
    /// What was evaluated.
    let label: String
    /// The inner update used for adaptation at test time.
    let adaptation: String
    /// Meta-training wall time, if the row was meta-trained.
    let seconds: Double?
    /// Test MSE (mean, standard error) after 0 steps, after the training number of steps, after 10.
    let losses: [(mean: Double, standardError: Double)]
}

/// The parsed command line (bad arguments exit with status 2 before anything runs).
let options = parseCommandLine(program: "maml", usage: Options.usage, Options.init)

do {
    if options.check { exit(try GradientCheck.run(seed: options.seed) ? 0 : 1) }

    var config = MetaConfig()
    config.iterations = options.iterations
    let network = config.network
    // Streams: the initialisation from `seed`, the meta-training tasks from `seed + 1` (the same stream
    // for every method), the held-out test tasks from `seed + 2`.
    var initGenerator = SeededGenerator(seed: options.seed)
    let theta0 = network.initialParameters(using: &initGenerator)
    let testTaskCount = 100, testQuerySize = 100
    var testSampler = SineTaskSampler(seed: options.seed &+ 2, supportSize: config.shots, querySize: testQuerySize)
    let testTasks = testSampler.next(testTaskCount)
    let stepCounts = [0, config.innerSteps, 10]

    /// The test losses of `theta` adapted with `dynamics` for each of `stepCounts`.
    func evaluate(_ theta: Parameters, _ dynamics: InnerDynamics) throws -> [(mean: Double, standardError: Double)] {
        try stepCounts.map { try metaTestLoss(of: theta, on: testTasks, network: network, dynamics: dynamics, steps: $0) }
    }

    print("""
        Few-shot sine regression: MLP \(network.widths) (\(network.parameterCount) parameters, tanh), \
        K = \(config.shots) support / \(config.shots) query points
        meta-training: \(config.iterations) iterations × \(config.metaBatch) tasks, Adam step \(config.metaStep), \
        \(config.innerSteps) inner step(s) (gradient α = \(config.innerStep), sign α = \(config.signStep)), seed \(options.seed)
        meta-test: \(testTaskCount) held-out tasks, \(config.shots) support / \(testQuerySize) query points each
        """)
    var rows = [
        ResultRow(label: "untrained init", adaptation: "gradient", seconds: nil,
                  losses: try evaluate(theta0, .gradientDescent(step: config.innerStep))),
    ]
    for learner in MetaLearner.allCases {
        let (theta, seconds) = try metaTrain(learner, from: theta0, config: config, taskSeed: options.seed &+ 1)
        rows.append(ResultRow(label: learner.name, adaptation: learner.adaptation, seconds: seconds,
                              losses: try evaluate(theta, learner.dynamics(config))))
        printError("maml: \(learner.name) meta-trained in \(String(format: "%.1f", seconds)) s")
    }

    /// `text` right-aligned in `width` characters (left-aligned when `left`).
    func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + fill : fill + text
    }
    let header = pad("method", 16, left: true) + pad("adapt", 9) + pad("train s", 9)
        + stepCounts.map { pad("MSE, \($0) step\($0 == 1 ? "" : "s")", 18) }.joined()
    print("\n" + header)
    print(String(repeating: "-", count: header.count))
    for row in rows {
        print(pad(row.label, 16, left: true) + pad(row.adaptation, 9) + pad(row.seconds.map { String(format: "%.1f", $0) } ?? "-", 9)
              + row.losses.map { pad(String(format: "%.3f ± %.3f", $0.mean, $0.standardError), 18) }.joined())
    }
    print("(test MSE: mean ± standard error over the \(testTaskCount) held-out tasks)")
} catch {
    printError("maml: \(error)")
    exit(1)
}
