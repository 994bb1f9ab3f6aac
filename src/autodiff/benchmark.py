"""Timings for the autodiff engine; prints figures (not a test).

    python -m src.autodiff.benchmark

1. The course's engine (a faithful copy of its style below) against `Var`: the course's
   1-8-1 network on its 105 training points, one forward, backward and SGD step per epoch.
2. The matrix backend against `Var` per epoch on the `overfit` experiment's network.
3. Shared sub-graphs and long chains, where the course's recursion once per path breaks down.
4. The `overfit` experiment end to end with the matrix backend.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from src.autodiff.data import make_data
from src.autodiff.engine import Var
from src.autodiff.nn import build_network
from src.autodiff.train import MatrixModel, VarModel, compose_config, train
from src.errors import ArgumentParser

# ---- the course's engine, in its style (nanograd as pasted in notebook 2.1, plus the
# ---- students' identity, the exercise's DenseLayer.forward and squared_loss)


class CourseVar:
    def __init__(self, val: float, grad_fn=lambda: []):
        assert type(val) is float
        self.v = val
        self.grad_fn = grad_fn
        self.grad = 0.0

    def backprop(self, bp):
        self.grad += bp
        for input, grad in self.grad_fn():  # noqa: A001
            input.backprop(grad * bp)

    def backward(self):
        self.backprop(1.0)

    def __add__(self, other):
        return CourseVar(self.v + other.v, lambda: [(self, 1.0), (other, 1.0)])

    def __mul__(self, other):
        return CourseVar(self.v * other.v, lambda: [(self, other.v), (other, self.v)])

    def __pow__(self, power):
        assert type(power) in {float, int}, "power must be float or int"
        return CourseVar(self.v**power, lambda: [(self, power * self.v ** (power - 1))])

    def __neg__(self):
        return CourseVar(-1.0) * self

    def __sub__(self, other):
        return self + (-other)

    def relu(self):
        return CourseVar(
            self.v if self.v > 0.0 else 0.0, lambda: [(self, 1.0 if self.v > 0.0 else 0.0)]
        )

    def identity(self):
        return CourseVar(self.v, lambda: [(self, 1.0)])


class CourseDenseLayer:
    def __init__(self, layer):  # a copy of a DenseLayer's values
        self.weights = [[CourseVar(w.v) for w in row] for row in layer.weights]
        self.bias = [CourseVar(b.v) for b in layer.bias]
        self.act_fn = lambda x: getattr(x, layer.activation)()

    def parameters(self):
        return [w for row in self.weights for w in row] + self.bias

    def forward(self, single_input):
        out = []
        for j in range(len(self.weights[0])):
            node = self.bias[j]
            for i in range(len(single_input)):
                node += self.weights[i][j] * single_input[i]
            out.append(self.act_fn(node))
        return out


def course_squared_loss(t, y):
    def squared_loss_single(t, y):
        loss = CourseVar(0.0)
        for i in range(len(t)):
            loss += (t[i] - y[i]) ** 2
        return loss

    loss = CourseVar(0.0)
    for n in range(len(t)):
        loss += squared_loss_single(t[n], y[n])
    return loss


def course_epoch(layers, x, y, lr):
    def forward_single(x):
        for layer in layers:
            x = layer.forward(x)
        return x

    loss = course_squared_loss(y, [forward_single(x_n) for x_n in x])
    loss.backward()
    params = [p for layer in layers for p in layer.parameters()]
    for p in params:
        p.v -= lr * p.grad
    for p in params:
        p.grad = 0.0
    return loss.v


def node_by_node_epoch(net, x, t, lr):
    """One epoch with Var on the course's graph: a + and a * per weight, a + per sample (which
    DenseLayer.forward and squared_error fuse into one node each)."""
    outputs = []
    for row in x:
        for layer in net.layers:
            out = []
            for j in range(layer.n_out):
                node = layer.bias[j]
                for i, x_i in enumerate(row):
                    node = node + layer.weights[i][j] * x_i
                out.append(getattr(node, layer.activation)())
            row = out
        outputs.append(row)
    loss = sum((y[0] - t_n[0]) ** 2 for y, t_n in zip(outputs, t))
    loss.backward()
    net.sgd_step(lr)
    net.zero_grad()
    return loss.v


def per_epoch(step, epochs: int, repeats: int = 5) -> float:
    """Seconds per call of step(): the best of `repeats` means over `epochs` calls (the best,
    as timeit advises: slower repeats measure other load on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(epochs):
            step()
        times.append((time.perf_counter() - start) / epochs)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    doc = __doc__.splitlines()[0]
    ArgumentParser(prog="python -m src.autodiff.benchmark", description=doc).parse_args(argv)
    data, lr = make_data(), 2e-3
    x, t = data.x_train, data.y_train
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")

    # 1. the course's engine vs Var on the course's 1-8-1 network, 105 training points
    net = build_network([1, 8, 1], "relu", "identity", "normal", np.random.default_rng(0))
    course = [CourseDenseLayer(layer) for layer in net.layers]
    x_course, t_course = ([[CourseVar(float(v)) for v in row] for row in a] for a in (x, t))
    var_model = VarModel(net, "sum")

    def course_step():
        return course_epoch(course, x_course, t_course, lr)

    def var_step():
        return var_model.step(x, t, lr)

    worst = max(abs(course_step() - var_step()) for _ in range(5))
    print(f"\n[1] course engine vs Var, 1-8-1 relu net, {len(x)} points, full batch")
    print(f"    same weights, 5 epochs: largest loss difference {worst:.1e}")
    course_s, var_s = per_epoch(course_step, 20), per_epoch(var_step, 20)
    x_list, t_list = x.tolist(), t.tolist()
    nodes_s = per_epoch(lambda: node_by_node_epoch(net, x_list, t_list, lr), 20)
    print(f"    course engine {course_s * 1e3:8.2f} ms/epoch")
    faster = f"Var is {course_s / var_s:.1f}x faster"
    print(f"    Var           {var_s * 1e3:8.2f} ms/epoch   -> {faster}")
    print(
        f"    (Var on the course's node-by-node graph, no fused linear/sum nodes: "
        f"{nodes_s * 1e3:.2f} ms/epoch, {course_s / nodes_s:.1f}x)"
    )

    # 2. the matrix backend vs Var on the overfit experiment's network
    cfg = compose_config("experiment=overfit")
    m = cfg.model
    sizes = [1, *m.hidden, 1]
    rng = np.random.default_rng(0)
    net = build_network(sizes, m.activation, m.output_activation, m.initializer, rng, m.init_std)
    var_model, matrix_model = VarModel(net, "sum"), MatrixModel(net, "sum")
    small = 1e-4  # tiny steps: both stay near the same weights while timed
    var_s = per_epoch(lambda: var_model.step(x, t, small), 2, repeats=2)
    matrix_s = per_epoch(lambda: matrix_model.step(x, t, small), 500)
    print(f"\n[2] matrix backend vs Var, overfit network {sizes} {m.activation}, full batch")
    print(f"    Var           {var_s * 1e3:8.2f} ms/epoch")
    faster = f"matrix is {var_s / matrix_s:.0f}x faster"
    print(f"    matrix        {matrix_s * 1e3:8.3f} ms/epoch   -> {faster}")

    # 3. graphs that the course's recursion once per path handles badly
    depth = 18
    a, course_a = Var(1.0), CourseVar(1.0)
    y, course_y = a, course_a
    for _ in range(depth):
        y, course_y = y + y, course_y + course_y
    var_s, course_s = per_epoch(y.backward, 1, 1), per_epoch(course_y.backward, 1, 1)
    print(f"\n[3] x = x + x repeated {depth} times ({depth} nodes, {2**depth} paths to a)")
    print(
        f"    course engine {course_s * 1e3:8.2f} ms, Var {var_s * 1e3:.3f} ms; "
        f"a.grad = {course_a.grad:.0f} and {a.grad:.0f}"
    )
    n = 200_000
    y = a = Var(0.5)
    for _ in range(n):
        y = y * 1.0 + 0.0
    var_s = per_epoch(y.backward, 1, 1)
    y = CourseVar(0.5)
    for _ in range(10_000):
        y = y * CourseVar(1.0)
    try:
        y.backward()
        course = "no error at 10,000 nodes"
    except RecursionError:
        course = "RecursionError at 10,000 nodes"
    print(
        f"    chain of {2 * n} nodes: Var backward {var_s:.2f} s (a.grad = {a.grad}); "
        f"the course engine: {course}"
    )

    # 4. the overfit experiment end to end, matrix backend, no logger
    cfg.backend = "matrix"
    metrics = train(cfg)
    print(
        f"\n[4] experiment=overfit backend=matrix, {metrics['epochs_run']} epochs, no logger: "
        f"{metrics['seconds']:.1f} s (train {metrics['train_loss']:.2f}, "
        f"validation {metrics['val_loss']:.2f})"
    )


if __name__ == "__main__":
    main()
