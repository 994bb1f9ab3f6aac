"""Timings for the autodiff engine; prints figures (not a test).

    python -m src.autodiff.benchmark

1. The course's engine (below: a small, faithful copy of its style: a lambda per node,
   recursive `backprop` once per path) against `Var`, on the course's 1-8-1 network over
   its 105 training points, one forward and backward (and SGD step) per epoch.
2. The matrix backend against `Var` per epoch on the `overfit` experiment's network.
3. Shared sub-graphs and long chains, where the course's recursion per path breaks down.
4. The `overfit` experiment end to end with the matrix backend.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from src.autodiff.data import make_data
from src.autodiff.engine import Var
from src.autodiff.nn import build_network
from src.autodiff.train import MatrixModel, VarModel
from src.errors import ArgumentParser

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "autodiff"


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
    def __init__(self, weights, bias, act_fn):
        self.weights = [[CourseVar(w) for w in row] for row in weights]
        self.bias = [CourseVar(b) for b in bias]
        self.act_fn = act_fn

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
    """One epoch with Var on the course's graph: a + and a * per weight, a + per sample
    (DenseLayer.forward and squared_error fuse these into one node each)."""
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


# ---- helpers


def per_epoch(step, epochs: int, repeats: int = 5) -> float:
    """Seconds per call of step(): the best of `repeats` means over `epochs` calls (the best,
    as timeit advises: slower repeats measure other load on the machine, not the code)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(epochs):
            step()
        times.append((time.perf_counter() - start) / epochs)
    return min(times)


def overfit_config():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            "train",
            overrides=["experiment=overfit", "logger=none", "print_every=0", "output_dir=null"],
        )


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(
        prog="python -m src.autodiff.benchmark", description=__doc__.splitlines()[0]
    )
    parser.parse_args(argv)  # no arguments: --help, or a refusal of anything else
    data = make_data()
    lr = 2e-3
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")

    # 1. course engine vs Var on the course's 1-8-1 network, 105 training points
    net = build_network([1, 8, 1], "relu", "identity", "normal", np.random.default_rng(0))
    course = [
        CourseDenseLayer(
            [[w.v for w in row] for row in layer.weights],
            [b.v for b in layer.bias],
            lambda x, name=layer.activation: getattr(x, name)(),
        )
        for layer in net.layers
    ]
    x_course = [[CourseVar(float(v)) for v in row] for row in data.x_train]
    y_course = [[CourseVar(float(v)) for v in row] for row in data.y_train]
    var_model = VarModel(net, "sum")
    losses = [
        (
            course_epoch(course, x_course, y_course, lr),
            var_model.step(data.x_train, data.y_train, lr),
        )
        for _ in range(5)
    ]
    worst = max(abs(a - b) for a, b in losses)
    print(f"\n[1] course engine vs Var, 1-8-1 relu net, {len(data.x_train)} points, full batch")
    print(f"    same weights, 5 epochs: largest loss difference {worst:.1e}")
    t_course = per_epoch(lambda: course_epoch(course, x_course, y_course, lr), 20)
    t_var = per_epoch(lambda: var_model.step(data.x_train, data.y_train, lr), 20)
    x_list, t_list = data.x_train.tolist(), data.y_train.tolist()
    t_nodes = per_epoch(lambda: node_by_node_epoch(net, x_list, t_list, lr), 20)
    print(f"    course engine {t_course * 1e3:8.2f} ms/epoch")
    print(
        f"    Var           {t_var * 1e3:8.2f} ms/epoch   -> Var is {t_course / t_var:.1f}x faster"
    )
    print(
        f"    (Var on the course's node-by-node graph, no fused linear/sum nodes: "
        f"{t_nodes * 1e3:.2f} ms/epoch, {t_course / t_nodes:.1f}x)"
    )

    # 2. matrix backend vs Var on the overfit experiment's network
    cfg = overfit_config()
    sizes = [1, *cfg.model.hidden, 1]
    net = build_network(
        sizes,
        cfg.model.activation,
        cfg.model.output_activation,
        cfg.model.initializer,
        np.random.default_rng(0),
        cfg.model.init_std,
    )
    var_model, matrix_model = VarModel(net, "sum"), MatrixModel(net, "sum")
    small = 1e-4  # tiny steps: both stay near the same weights while timed
    t_var = per_epoch(lambda: var_model.step(data.x_train, data.y_train, small), 2, repeats=2)
    t_matrix = per_epoch(lambda: matrix_model.step(data.x_train, data.y_train, small), 500)
    print(
        f"\n[2] matrix backend vs Var, overfit network {sizes} {cfg.model.activation}, full batch"
    )
    print(f"    Var           {t_var * 1e3:8.2f} ms/epoch")
    print(
        f"    matrix        {t_matrix * 1e3:8.3f} ms/epoch   "
        f"-> matrix is {t_var / t_matrix:.0f}x faster"
    )

    # 3. graphs that the course's recursion once per path handles badly
    depth = 18
    a, course_a = Var(1.0), CourseVar(1.0)
    x, course_x = a, course_a
    for _ in range(depth):
        x, course_x = x + x, course_x + course_x
    start = time.perf_counter()
    x.backward()
    t_var = time.perf_counter() - start
    start = time.perf_counter()
    course_x.backward()
    t_course = time.perf_counter() - start
    print(f"\n[3] x = x + x repeated {depth} times ({depth} nodes, {2**depth} paths to a)")
    print(
        f"    course engine {t_course * 1e3:8.2f} ms, Var {t_var * 1e3:.3f} ms; "
        f"a.grad = {course_a.grad:.0f} and {a.grad:.0f}"
    )
    n = 200_000
    x = a = Var(0.5)
    for _ in range(n):
        x = x * 1.0 + 0.0
    start = time.perf_counter()
    x.backward()
    print(
        f"    chain of {2 * n} nodes: Var backward {time.perf_counter() - start:.2f} s "
        f"(a.grad = {a.grad}); the course engine: ",
        end="",
    )
    x = CourseVar(0.5)
    for _ in range(10_000):
        x = x * CourseVar(1.0)
    try:
        x.backward()
        print("no error at 10,000 nodes")
    except RecursionError:
        print("RecursionError at 10,000 nodes")

    # 4. the overfit experiment end to end, matrix backend, no logger
    from src.autodiff.train import train

    cfg.backend = "matrix"
    metrics = train(cfg)
    print(
        f"\n[4] experiment=overfit backend=matrix, {metrics['epochs_run']} epochs, no logger: "
        f"{metrics['seconds']:.1f} s (train {metrics['train_loss']:.2f}, "
        f"validation {metrics['val_loss']:.2f})"
    )


if __name__ == "__main__":
    main()
