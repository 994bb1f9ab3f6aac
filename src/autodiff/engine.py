"""`Var`: a scalar reverse-mode autodiff engine, the course's nanograd made fast and iterative.

Each operation returns a `Var` holding its inputs and its local derivatives d(out)/d(input),
computed in the forward pass; `backward()` visits each node once, in topological order.
Gradients accumulate (`+=`) as in the course: two paths add up, a second `backward()` doubles
them; zeroing is explicit (`x.grad = 0.0`, or `Network.zero_grad()`).

    >>> a, b, d = Var(3.0), Var(5.0), Var(9.0)
    >>> f = a * b + a * d
    >>> f.backward()
    >>> a.grad, b.grad, d.grad
    (14.0, 3.0, 3.0)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence


def _number(x, op: str) -> float:
    """`x` as a float, or a TypeError that names the operation."""
    kind = type(x)
    if kind is float:  # the common cases first: isinstance(x, numbers.Real) is slow
        return x
    if kind is int or (kind is not bool and isinstance(x, numbers.Real)):
        return float(x)
    raise TypeError(f"Var {op}: expected a number or a Var, got {type(x).__name__} {x!r}")


class Var:
    """A float `v` with a gradient `grad`, and what it needs to pass gradients to its inputs."""

    __slots__ = ("v", "grad", "_inputs", "_local_grads", "_op", "_upstream", "_users")

    def __init__(
        self, v: float, inputs: Sequence[Var] = (), local_grads: Sequence[float] = (), op: str = ""
    ):
        self.v = v if type(v) is float else _number(v, "Var()")
        self.grad = 0.0
        self._inputs = inputs  # the Vars this one was computed from (none for a leaf)
        self._local_grads = local_grads  # d self / d input, one per input
        self._op = op  # for graph()
        self._upstream = 0.0  # during backward(): the gradient collected so far
        self._users = 0  # during backward(): uses still to send their gradient

    def __repr__(self) -> str:
        return f"Var(v={self.v:.4f}, grad={self.grad:.4f})"

    # ---- arithmetic: a plain number on either side is a constant (it gets no gradient)

    def __add__(self, other) -> Var:
        if isinstance(other, Var):
            return Var(self.v + other.v, (self, other), (1.0, 1.0), "+")
        return Var(self.v + _number(other, "+"), (self,), (1.0,), "+")

    __radd__ = __add__

    def __mul__(self, other) -> Var:
        if isinstance(other, Var):
            return Var(self.v * other.v, (self, other), (other.v, self.v), "*")
        c = _number(other, "*")
        return Var(self.v * c, (self,), (c,), "*")

    __rmul__ = __mul__

    def __neg__(self) -> Var:
        return Var(-self.v, (self,), (-1.0,), "neg")

    def __sub__(self, other) -> Var:
        if isinstance(other, Var):
            return Var(self.v - other.v, (self, other), (1.0, -1.0), "-")
        return Var(self.v - _number(other, "-"), (self,), (1.0,), "-")

    def __rsub__(self, other) -> Var:  # number - Var
        return Var(_number(other, "-") - self.v, (self,), (-1.0,), "-")

    def __truediv__(self, other) -> Var:
        if isinstance(other, Var):
            if other.v == 0.0:
                raise ZeroDivisionError("Var /: division by a Var whose value is 0")
            local = (1.0 / other.v, -self.v / (other.v * other.v))
            return Var(self.v / other.v, (self, other), local, "/")
        c = _number(other, "/")
        if c == 0.0:
            raise ZeroDivisionError("Var /: division by 0")
        return Var(self.v / c, (self,), (1.0 / c,), "/")

    def __rtruediv__(self, other) -> Var:  # number / Var
        c = _number(other, "/")
        if self.v == 0.0:
            raise ZeroDivisionError("Var /: division by a Var whose value is 0")
        return Var(c / self.v, (self,), (-c / (self.v * self.v),), "/")

    def __pow__(self, power) -> Var:
        if isinstance(power, Var):
            raise TypeError("Var **: the exponent must be a plain number, not a Var")
        p, x = _number(power, "**"), self.v
        if x < 0.0 and not p.is_integer():
            raise ValueError(f"Var **: {x} ** {p} is not a real number")
        if x == 0.0 and p < 0.0:
            raise ZeroDivisionError(f"Var **: 0.0 ** {p} is undefined")
        if p == 0.0:
            local = 0.0
        elif x == 0.0 and p < 1.0:
            local = math.inf  # d/dx x**p is unbounded at 0 for 0 < p < 1 (torch says inf too)
        else:
            local = p * x ** (p - 1.0)
        return Var(x**p, (self,), (local,), f"**{p:g}")

    # ---- functions and activations

    def exp(self) -> Var:
        try:
            e = math.exp(self.v)
        except OverflowError:
            raise OverflowError(f"Var.exp: exp({self.v}) is too large for a float") from None
        return Var(e, (self,), (e,), "exp")

    def log(self) -> Var:
        if self.v <= 0.0:
            raise ValueError(f"Var.log: log needs a positive value, got {self.v}")
        return Var(math.log(self.v), (self,), (1.0 / self.v,), "log")

    def tanh(self) -> Var:
        t = math.tanh(self.v)
        return Var(t, (self,), (1.0 - t * t,), "tanh")

    def relu(self) -> Var:
        if self.v > 0.0:
            return Var(self.v, (self,), (1.0,), "relu")
        return Var(0.0, (self,), (0.0,), "relu")

    def sigmoid(self) -> Var:
        if self.v >= 0.0:  # two forms, so that exp never overflows
            s = 1.0 / (1.0 + math.exp(-self.v))
        else:
            e = math.exp(self.v)
            s = e / (1.0 + e)
        return Var(s, (self,), (s * (1.0 - s),), "sigmoid")

    def identity(self) -> Var:
        return Var(self.v, (self,), (1.0,), "identity")

    # ---- reverse mode

    def backward(self) -> None:
        """Add d self / d x to `x.grad` for every Var x self was computed from. Two passes with
        explicit stacks (no recursion limit): count each node's uses in this graph, then from
        self down, pass a node's gradient on once all its uses have sent theirs."""
        stack = [self]
        while stack:
            node = stack.pop()
            for parent in node._inputs:
                if parent._users == 0:  # first time we meet it
                    stack.append(parent)
                parent._users += 1

        self._upstream = 1.0
        ready = [self]
        while ready:
            node = ready.pop()
            g = node._upstream
            node._upstream = 0.0
            node.grad += g
            for parent, local in zip(node._inputs, node._local_grads):
                parent._upstream += local * g
                parent._users -= 1
                if parent._users == 0:
                    ready.append(parent)

    def graph(self, names: dict[str, Var] | None = None) -> str:
        """Graphviz dot text for the graph below self: a box per node (name or operation,
        value, gradient), an arrow per input labelled with the local derivative.
        `names` maps a label to a Var, e.g. {"a": a, "b": b}; render with `dot -Tpng`."""
        label_of = {id(var): name for name, var in (names or {}).items()}
        index: dict[int, int] = {}
        nodes, stack = [], [self]
        while stack:
            node = stack.pop()
            if id(node) not in index:
                index[id(node)] = len(nodes)
                nodes.append(node)
                stack.extend(node._inputs)
        lines = ["digraph {", "  rankdir=LR;", "  node [shape=record];"]
        for node in nodes:
            label = label_of.get(id(node), node._op or "leaf")
            lines.append(
                f'  n{index[id(node)]} [label="{label} | v={node.v:.4g} | grad={node.grad:.4g}"];'
            )
        for node in nodes:
            for parent, local in zip(node._inputs, node._local_grads):
                lines.append(f'  n{index[id(parent)]} -> n{index[id(node)]} [label="{local:.4g}"];')
        lines.append("}")
        return "\n".join(lines)


# ---- many-input nodes: the derivatives of a chain of + and *, in one node instead of 2n (a
# ---- network's passes several times faster)


def linear(weights: Sequence[Var], inputs: Sequence, bias: Var | float = 0.0) -> Var:
    """bias + sum_i weights[i] * inputs[i] as one node: a neuron before its activation.
    Inputs may be Vars or plain numbers (data); plain numbers get no gradient."""
    if len(weights) != len(inputs):
        raise ValueError(f"linear: {len(weights)} weights but {len(inputs)} inputs")
    if isinstance(bias, Var):
        v, parents, grads = bias.v, [bias], [1.0]
    else:
        v, parents, grads = _number(bias, "linear"), [], []
    for w, x in zip(weights, inputs):
        if isinstance(x, Var):
            v += w.v * x.v
            parents += (w, x)
            grads += (x.v, w.v)
        else:  # data: a constant
            x = _number(x, "linear")
            v += w.v * x
            parents.append(w)
            grads.append(x)
    return Var(v, parents, grads, "linear")


def sum_vars(terms: Sequence[Var]) -> Var:
    """terms[0] + terms[1] + ... as one node (e.g. a loss summed over samples)."""
    if not terms:
        raise ValueError("sum_vars: nothing to sum")
    v = 0.0
    for term in terms:
        v += term.v
    return Var(v, tuple(terms), (1.0,) * len(terms), "sum")
