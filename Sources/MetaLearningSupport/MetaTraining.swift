import Bilevel
import Foundation

// What the meta-learning examples (`maml`, `fewshot`) share: the meta-training loop (average the
// meta-gradients of a task batch, one Adam step), the spread of a meta-test score over tasks, and the
// central-difference check of a meta-gradient. Each example keeps its own tasks, network and table.

/// Meta-trains from `theta0`: each of `iterations` iterations draws `metaBatch` tasks with `nextTasks`,
/// averages their meta-gradients `metaGradient(task, θ)` and takes one Adam step of size `metaStep`,
///
///     θ ← Adam(θ, (1/B) Σ_{tasks} ∇_θ L_q(θ'(θ))),
///
/// the outer loop of MAML [Finn 2017, Alg. 2] with Adam in place of plain SGD.
///
/// - Parameters:
///   - learnerName: the learner's name, for the error message.
///   - theta0: the initial meta-parameters (any shape; the meta-gradients must have it too).
/// - Returns: the learned meta-parameters and the wall-clock seconds spent.
/// - Throws: `BilevelError.nonFinite` naming the learner and the iteration when the averaged
///   meta-gradient turns non-finite, and whatever `metaGradient` throws.
public func metaTrain<Task>(
    learnerName: String, from theta0: Tensor, iterations: Int, metaBatch: Int, metaStep: Double,
    nextTasks: (Int) -> [Task], metaGradient: (Task, Tensor) throws -> Tensor
) throws -> (theta: Tensor, seconds: Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    var adam = try OuterOptimizerState(validating: .adam(step: metaStep))
    var theta = theta0.detached
    for iteration in 1...iterations {
        var sum = Tensor(zeros: theta.shape)
        for task in nextTasks(metaBatch) {
            sum = sum + (try metaGradient(task, theta))
        }
        guard !sum.hasNonFinite else {
            throw BilevelError.nonFinite(quantity: "the \(learnerName) meta-gradient at iteration \(iteration)", step: nil)
        }
        theta = adam.update(theta, gradient: sum / Double(metaBatch)).detached
    }
    return (theta, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

/// The mean of per-task meta-test scores and its standard error over tasks,
/// `s/√n` with the sample variance `s² = Σ(xᵢ − x̄)²/(n − 1)` (`n − 1` floored at 1).
public func meanAndStandardError(_ scores: [Double]) -> (mean: Double, standardError: Double) {
    let n = Double(scores.count), mean = scores.reduce(0, +) / n
    let variance = scores.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(n - 1, 1)
    return (mean, (variance / n).squareRoot())
}
