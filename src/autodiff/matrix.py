"""Backpropagation in matrix form (part 1 of the report), a second backend for the same nets.
One column per sample; with z(0) = X^T and L layers:

    forward    a(l) = W(l) z(l-1) + b(l)              z(l) = h_l(a(l))
    output     delta(L) = h_L'(a(L)) * dE/dz(L)       (E = sum (z(L) - T)^2: dE/dz = 2 (z - T))
    backward   delta(l) = h_l'(a(l)) * W(l+1)^T delta(l+1)
    gradients  dE/dW(l) = delta(l) z(l-1)^T           dE/db(l) = delta(l) summed over samples

W(l) has shape (n_out, n_in): the transpose of a DenseLayer's `weights` table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # = 1 / (1 + exp(-a)), without overflow


def _sigmoid_grad(a):
    s = _sigmoid(a)
    return s * (1.0 - s)


# name -> (h, h'); relu' is 0 at 0, as Var.relu's
ACTIVATION_FUNCTIONS = {
    "identity": (lambda a: a, np.ones_like),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0.0).astype(a.dtype)),
    "tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
    "sigmoid": (_sigmoid, _sigmoid_grad),
}


class MatrixNet:
    """A feed-forward net of any depth as numpy arrays, trained with the delta rule."""

    def __init__(self, weights: Sequence, biases: Sequence, activations: Sequence[str]):
        if not len(weights) == len(biases) == len(activations):
            raise ValueError("MatrixNet: one weight matrix, bias and activation per layer")
        self.weights = [np.array(W, dtype=float) for W in weights]
        self.biases = [np.array(b, dtype=float) for b in biases]
        self.activations = list(activations)

    @classmethod
    def from_layers(cls, layers) -> MatrixNet:
        """Copy the values of a list of DenseLayers (or a Network)."""
        layers = getattr(layers, "layers", layers)
        return cls(
            [np.array([[w.v for w in row] for row in layer.weights]).T for layer in layers],
            [np.array([b.v for b in layer.bias]) for layer in layers],
            [layer.activation for layer in layers],
        )

    def copy_to(self, layers) -> None:
        """Write the current values into DenseLayers of the same shapes."""
        for layer, W, b in zip(getattr(layers, "layers", layers), self.weights, self.biases):
            for i, row in enumerate(layer.weights):
                for j, w in enumerate(row):
                    w.v = float(W[j, i])
            for j, bias in enumerate(layer.bias):
                bias.v = float(b[j])

    def forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """x: (samples, n_in). Returns the activations a(1..L) and outputs z(0..L)."""
        z = [np.asarray(x, dtype=float).T]
        a = []
        for W, b, name in zip(self.weights, self.biases, self.activations):
            a.append(W @ z[-1] + b[:, None])
            z.append(ACTIVATION_FUNCTIONS[name][0](a[-1]))
        return a, z

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(samples, n_in) -> (samples, n_out)."""
        return self.forward(x)[1][-1].T

    def loss(self, x: np.ndarray, t: np.ndarray, kind: str = "sum") -> float:
        """Sum (kind="sum", the course) or mean of the squared errors; t: (samples, n_out)."""
        err = self.predict(x) - t
        total = float(np.sum(err * err))
        return total if kind == "sum" else total / err.size

    def gradients(self, x: np.ndarray, t: np.ndarray, kind: str = "sum"):
        """The loss and dE/dW(l), dE/db(l) for every layer, by the delta rule."""
        a, z = self.forward(x)
        err = z[-1] - np.asarray(t, dtype=float).T
        scale = 1.0 if kind == "sum" else 1.0 / err.size
        loss = scale * float(np.sum(err * err))

        grad_W, grad_b = [None] * len(a), [None] * len(a)
        upstream = 2.0 * scale * err  # dE/dz(L), then W(l+1)^T delta(l+1)
        for l in reversed(range(len(a))):  # noqa: E741  (l as in the equations)
            delta = ACTIVATION_FUNCTIONS[self.activations[l]][1](a[l]) * upstream
            grad_W[l] = delta @ z[l].T  # z[l] is z(l-1) in the equations: z[0] is the input
            grad_b[l] = delta.sum(axis=1)
            if l > 0:
                upstream = self.weights[l].T @ delta
        return loss, grad_W, grad_b

    def sgd_step(self, grad_W, grad_b, lr: float) -> None:
        for W, b, gW, gb in zip(self.weights, self.biases, grad_W, grad_b):
            W -= lr * gW
            b -= lr * gb
