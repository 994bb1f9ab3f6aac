"""The plain-torch MLP: `depth` hidden layers of `width` units and one logit."""

from __future__ import annotations

import itertools

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}


def build_mlp(
    depth: int, width: int, activation: str = "tanh", in_features: int = 2
) -> nn.Sequential:
    """Linear layers with `activation` between them; depth 0 is logistic regression."""
    sizes = [in_features] + [width] * depth + [1]
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1])  # no activation on the logit


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
