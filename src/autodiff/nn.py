"""Networks of `Var`s as in the course: initializers, `DenseLayer`, `Network` and the losses.
As there, `layer.weights[i][j]` connects input i to output j, `layer.bias[j]` is output j's."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from src.autodiff.engine import Var, linear, sum_vars

ACTIVATIONS = ("identity", "relu", "tanh", "sigmoid")
INITIALIZERS = ("normal", "constant", "glorot", "he")


class NormalInitializer:
    """Weights ~ Normal(mean, std) (the course: mean 0, std 0.1), biases 0."""

    def __init__(self, mean: float = 0.0, std: float = 0.1, rng: np.random.Generator | None = None):
        self.mean, self.std = mean, std
        self.rng = rng if rng is not None else np.random.default_rng()

    def std_for(self, n_in: int, n_out: int) -> float:
        return self.std

    def init_weights(self, n_in: int, n_out: int) -> list[list[Var]]:
        values = self.rng.normal(self.mean, self.std_for(n_in, n_out), size=(n_in, n_out))
        return [[Var(float(w)) for w in row] for row in values]

    def init_bias(self, n_out: int) -> list[Var]:
        return [Var(0.0) for _ in range(n_out)]


class GlorotInitializer(NormalInitializer):
    """Weights ~ Normal(0, variance 2a / (n_in + n_out)), a = 2 for relu, else 1."""

    def __init__(self, activation: str, rng: np.random.Generator | None = None):
        super().__init__(0.0, 0.0, rng)
        self.a = 2.0 if activation == "relu" else 1.0

    def std_for(self, n_in: int, n_out: int) -> float:
        return math.sqrt(2.0 * self.a / (n_in + n_out))


class HeInitializer(GlorotInitializer):
    """Weights ~ Normal(0, variance a / n_in)."""

    def std_for(self, n_in: int, n_out: int) -> float:
        return math.sqrt(self.a / n_in)


class ConstantInitializer:
    """Every weight `weight` (course: 1), every bias `bias` (course: 0)."""

    def __init__(self, weight: float = 1.0, bias: float = 0.0):
        self.weight, self.bias = weight, bias

    def init_weights(self, n_in: int, n_out: int) -> list[list[Var]]:
        return [[Var(self.weight) for _ in range(n_out)] for _ in range(n_in)]

    def init_bias(self, n_out: int) -> list[Var]:
        return [Var(self.bias) for _ in range(n_out)]


class DenseLayer:
    """z_j = h(b_j + sum_i w_ij x_i) for j < n_out, with h one of ACTIVATIONS (by name)."""

    def __init__(self, n_in: int, n_out: int, activation: str = "relu", initializer=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"DenseLayer: activation {activation!r} is not one of {ACTIVATIONS}")
        initializer = initializer if initializer is not None else NormalInitializer()
        self.n_in, self.n_out, self.activation = n_in, n_out, activation
        self.weights = initializer.init_weights(n_in, n_out)
        self.bias = initializer.init_bias(n_out)
        self._act = getattr(Var, activation)  # e.g. Var.relu
        self._columns = [list(col) for col in zip(*self.weights)]  # the weights into output j

    def __repr__(self) -> str:
        return f"DenseLayer({self.n_in}, {self.n_out}, {self.activation!r})"

    def parameters(self) -> list[Var]:
        return [w for row in self.weights for w in row] + self.bias

    def forward(self, single_input: Sequence) -> list[Var]:
        """One sample (n_in numbers or Vars) -> n_out Vars: each one `linear` node (the course's
        loop of + and *) and its activation."""
        if len(single_input) != self.n_in:
            raise ValueError(f"DenseLayer: expected {self.n_in} inputs, got {len(single_input)}")
        act = self._act
        return [act(linear(column, single_input, b)) for column, b in zip(self._columns, self.bias)]


class Network:
    """Layers applied in turn, with the course's training helpers (exercise m)."""

    def __init__(self, layers: Sequence[DenseLayer]):
        self.layers = list(layers)

    def forward(self, single_input: Sequence) -> list[Var]:
        for layer in self.layers:
            single_input = layer.forward(single_input)
        return single_input

    def __call__(self, inputs: Sequence[Sequence]) -> list[list[Var]]:
        """A batch: one list of inputs per sample -> one list of outputs per sample."""
        return [self.forward(x) for x in inputs]

    def parameters(self) -> list[Var]:
        return [p for layer in self.layers for p in layer.parameters()]

    def sgd_step(self, lr: float) -> None:
        for p in self.parameters():
            p.v -= lr * p.grad

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


def make_initializer(name: str, activation: str, rng: np.random.Generator, std: float = 0.1):
    """The initializer called `name` (INITIALIZERS) for a layer with this activation."""
    if name == "normal":
        return NormalInitializer(0.0, std, rng)
    if name == "constant":
        return ConstantInitializer()
    if name == "glorot":
        return GlorotInitializer(activation, rng)
    if name == "he":
        return HeInitializer(activation, rng)
    raise ValueError(f"make_initializer: {name!r} is not one of {INITIALIZERS}")


def build_network(
    sizes: Sequence[int],
    activation: str = "relu",
    output_activation: str = "identity",
    initializer: str = "normal",
    rng: np.random.Generator | None = None,
    std: float = 0.1,
) -> Network:
    """sizes = [n_in, hidden..., n_out]; `activation` in the hidden layers. The layers draw
    their weights from `rng` in turn: one seed, one network."""
    rng = rng if rng is not None else np.random.default_rng()
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        act = output_activation if k == len(sizes) - 2 else activation
        layers.append(DenseLayer(n_in, n_out, act, make_initializer(initializer, act, rng, std)))
    return Network(layers)


def squared_error(outputs: Sequence[Sequence[Var]], targets: Sequence[Sequence]) -> Var:
    """The course's loss: the SUM over samples and outputs of (y - t)^2."""
    if len(outputs) != len(targets):
        raise ValueError(f"squared_error: {len(outputs)} outputs but {len(targets)} targets")
    terms = []
    for y_row, t_row in zip(outputs, targets):
        if len(y_row) != len(t_row):
            raise ValueError(f"squared_error: output size {len(y_row)} != target size {len(t_row)}")
        terms += [(y - t) ** 2 for y, t in zip(y_row, t_row)]
    return sum_vars(terms)


def mean_squared_error(outputs: Sequence[Sequence[Var]], targets: Sequence[Sequence]) -> Var:
    """squared_error divided by the number of terms (samples x outputs)."""
    return squared_error(outputs, targets) / sum(len(row) for row in targets)
