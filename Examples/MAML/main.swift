import Bilevel
import CommandLineOptions
import Foundation
import MetaLearningSupport

// maml: few-shot sinusoid regression (Finn et al. 2017) meta-trained three ways (second-order MAML,
// first-order MAML, Sign-MAML) from one seeded initialisation on one seeded task stream, then scored on
// held-out tasks. See Docs/maml.md.

/// The help text.
let usage = MetaLearningOptions.usage(
    program: "maml", iterationsPer: "method", defaultIterations: MetaConfig().iterations,
    checkDescription: """
        compare the MAML meta-gradient with central finite differences on a tiny
                            network; prints the relative error and exits 1 if it exceeds 1e-6
        """)

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
let options = parseCommandLine(program: "maml", usage: usage) {
    try MetaLearningOptions($0, defaultIterations: MetaConfig().iterations)
}

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

    printTable(
        header: pad("method", 16, left: true) + pad("adapt", 9) + pad("train s", 9)
            + stepCounts.map { pad("MSE, \($0) step\($0 == 1 ? "" : "s")", 18) }.joined(),
        rows: rows.map { row in
            pad(row.label, 16, left: true) + pad(row.adaptation, 9) + pad(row.seconds.map { String(format: "%.1f", $0) } ?? "-", 9)
                + row.losses.map { pad(String(format: "%.3f ± %.3f", $0.mean, $0.standardError), 18) }.joined()
        })
    print("(test MSE: mean ± standard error over the \(testTaskCount) held-out tasks)")
} catch {
    printError("maml: \(error)")
    exit(1)
}
