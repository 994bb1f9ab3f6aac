"""The Var engine: the report's worked examples, accumulation, errors, and random graphs
checked against torch.autograd (float64) and central finite differences."""

import math
import random

import pytest
import torch

from src.autodiff import Var
from src.autodiff.engine import linear, sum_vars


def test_worked_example_1():
    a, b = Var(3.0), Var(5.0)
    f = a * b
    f.backward()
    assert (f.v, f.grad, a.grad, b.grad) == (15.0, 1.0, 5.0, 3.0)


def test_worked_example_2_and_a_second_backward_doubles():
    a, b, d = Var(3.0), Var(5.0), Var(9.0)
    c, e = a * b, a * d
    f = c + e
    f.backward()
    assert (a.grad, b.grad, d.grad, c.grad, e.grad, f.grad) == (14.0, 3.0, 3.0, 1.0, 1.0, 1.0)
    f.backward()
    assert (a.grad, b.grad, d.grad, c.grad, e.grad, f.grad) == (28.0, 6.0, 6.0, 2.0, 2.0, 2.0)
    for v in (a, b, d, c, e, f):
        v.grad = 0.0
    f.backward()
    assert (a.grad, b.grad, d.grad) == (14.0, 3.0, 3.0)


def test_graph_text_names_nodes_and_local_derivatives():
    a, b, d = Var(3.0), Var(5.0), Var(9.0)
    f = a * b + a * d
    f.backward()
    dot = f.graph({"a": a, "b": b, "d": d, "f": f})
    assert dot.startswith("digraph") and dot.count("->") == 6
    assert 'label="a | v=3 | grad=14"' in dot and 'label="f | v=42 | grad=1"' in dot
    assert '[label="5"]' in dot and '[label="9"]' in dot  # d(ab)/da = b, d(ad)/da = d


def test_plain_numbers_on_either_side():
    x = Var(2.0)
    outs = [x + 1, 1 + x, x - 1, 1 - x, x * 3, 3 * x, x / 4, 4 / x, -x, x**2, x**0.5]
    values = [3, 3, 1, -1, 6, 6, 0.5, 2, -2, 4, math.sqrt(2)]
    grads = [1, 1, 1, -1, 3, 3, 0.25, -1, -1, 4, 0.5 / math.sqrt(2)]
    for out, value, grad in zip(outs, values, grads):
        x.grad = 0.0
        out.backward()
        assert out.v == pytest.approx(value) and x.grad == pytest.approx(grad)


def test_errors_name_the_operation():
    x = Var(2.0)
    with pytest.raises(ValueError, match="log"):
        Var(0.0).log()
    with pytest.raises(ValueError, match="log"):
        Var(-1.0).log()
    with pytest.raises(TypeError, match=r"\+"):
        x + "1"
    with pytest.raises(TypeError, match=r"\*"):
        [1.0] * x
    with pytest.raises(TypeError, match=r"\*\*"):
        x ** Var(2.0)
    with pytest.raises(TypeError, match=r"\*\*"):
        x ** "2"
    with pytest.raises(TypeError, match="Var"):
        Var("3")
    with pytest.raises(ZeroDivisionError, match="/"):
        x / Var(0.0)
    with pytest.raises(ValueError, match=r"\*\*"):
        Var(-8.0) ** (1 / 3)
    with pytest.raises(OverflowError, match="exp"):
        Var(1000.0).exp()


def test_long_chain_and_shared_subgraphs():
    a = Var(1.0)
    x = a
    for _ in range(100_000):  # 200,000 nodes: recursion would fail long before this
        x = x * 1.0 + 0.5
    x.backward()
    assert a.grad == 1.0 and x.v == 50_001.0

    a = Var(1.0)
    x = a
    for _ in range(60):  # 2**60 paths from x to a: each node must be visited once
        x = x + x
    x.backward()
    assert a.grad == 2.0**60


def test_linear_and_sum_vars_match_chains_of_plus_and_times():
    rng = random.Random(1)
    ws = [Var(rng.uniform(-1, 1)) for _ in range(5)]
    xs = [Var(rng.uniform(-1, 1)), 0.3, Var(rng.uniform(-1, 1)), -1.2, Var(rng.uniform(-1, 1))]
    b = Var(0.7)
    fused = sum_vars([linear(ws, xs, b).tanh(), linear(ws, xs, 0.1) ** 2])
    fused.backward()
    fused_grads = [v.grad for v in [*ws, b, xs[0], xs[2], xs[4]]]
    for v in [*ws, b, xs[0], xs[2], xs[4]]:
        v.grad = 0.0
    s1, s2 = b, Var(0.0) + 0.1
    for w, x in zip(ws, xs):
        s1, s2 = s1 + w * x, s2 + w * x
    chain = s1.tanh() + s2**2
    chain.backward()
    assert fused.v == pytest.approx(chain.v, abs=1e-12)
    for g_fused, v in zip(fused_grads, [*ws, b, xs[0], xs[2], xs[4]]):
        assert g_fused == pytest.approx(v.grad, abs=1e-12)
    with pytest.raises(ValueError, match="linear"):
        linear(ws, xs[:3], b)


# ---- random expression graphs, the same ops applied to Var and to float64 torch tensors

UNARY = {
    "exp": (lambda x: (x * 0.3).exp(), lambda x: (x * 0.3).exp()),
    "log": (lambda x: (x * x + 0.5).log(), lambda x: (x * x + 0.5).log()),
    "tanh": (lambda x: x.tanh(), torch.tanh),
    "relu": (lambda x: x.relu(), torch.relu),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid),
    "identity": (lambda x: x.identity(), lambda x: x),
    "neg": (lambda x: -x, lambda x: -x),
    "square": (lambda x: x**2, lambda x: x**2),
    "cube": (lambda x: x**3, lambda x: x**3),
    "const": (lambda x: 2.5 - x / 3.0, lambda x: 2.5 - x / 3.0),
}
BINARY = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": lambda x, y: x / (y * y + 1.0),
}


def random_program(rng: random.Random, n_leaves: int, n_ops: int) -> list:
    """A list of (kind, name, argument indices); node i >= n_leaves is op i - n_leaves.
    Arguments are drawn from all earlier nodes, so sub-graphs are shared."""
    program = []
    for k in range(n_ops):
        n = n_leaves + k
        if rng.random() < 0.5:
            program.append(("unary", rng.choice(sorted(UNARY)), (rng.randrange(n),)))
        else:
            args = (rng.randrange(n), rng.randrange(n))
            program.append(("binary", rng.choice(sorted(BINARY)), args))
    return program


def run_program(program, leaves, use_torch: bool):
    nodes = list(leaves)
    for kind, name, args in program:
        if kind == "unary":
            nodes.append(UNARY[name][1 if use_torch else 0](nodes[args[0]]))
        else:
            nodes.append(BINARY[name](nodes[args[0]], nodes[args[1]]))
    out = nodes[-1]
    for node in nodes[-4:-1]:  # several nodes feed the output
        out = out + node
    return out


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_match_torch_and_finite_differences(seed):
    rng = random.Random(seed)
    values = [rng.uniform(-1.5, 1.5) for _ in range(4)]
    program = random_program(rng, len(values), 25)

    leaves = [Var(v) for v in values]
    out = run_program(program, leaves, use_torch=False)
    out.backward()

    t_leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    t_out = run_program(program, t_leaves, use_torch=True)
    t_out.backward()
    assert out.v == pytest.approx(t_out.item(), rel=1e-12, abs=1e-12)
    for leaf, t_leaf in zip(leaves, t_leaves):
        expected = 0.0 if t_leaf.grad is None else t_leaf.grad.item()
        assert leaf.grad == pytest.approx(expected, rel=1e-9, abs=1e-9)

    h = 1e-6
    for i, leaf in enumerate(leaves):
        up = run_program(program, [Var(v + h * (j == i)) for j, v in enumerate(values)], False).v
        down = run_program(program, [Var(v - h * (j == i)) for j, v in enumerate(values)], False).v
        assert leaf.grad == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-5)
