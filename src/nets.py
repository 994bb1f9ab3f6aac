"""The plain-torch MLP, and K of them stacked into one module that trains them side by side.

`MLP` is the reference network: `depth` hidden layers of `width` units and one logit.
`StackedMLP` holds K MLPs of one shape with every parameter given a leading member axis
(weights (K, out, in)), and runs all of them in one pass of batched matmuls. Its state dict has
the MLP's names, so member k's weights are `{name: tensor[k]}` (`member_state`) and load into an
MLP as they are.
"""

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


class MLP(nn.Module):
    """`depth` hidden layers of `width` units with `activation`, then one logit (no activation).

    depth 0 is logistic regression.
    """

    def __init__(self, depth: int, width: int, activation: str = "tanh", in_features: int = 2):
        super().__init__()
        sizes = [in_features] + [width] * depth + [1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = self.layers
        for layer in hidden:
            x = self.activation(layer(x))
        return last(x)


def build_mlp(depth: int, width: int, activation: str = "tanh", in_features: int = 2) -> MLP:
    return MLP(depth, width, activation, in_features)


class StackedLinear(nn.Module):
    """K Linear layers of one shape: weight (K, out, in), bias (K, out); input (K, B, in)."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedMLP(nn.Module):
    """K MLPs of one shape trained as one module: member k sees only its own slice of every
    parameter, so its gradient is the one it would get alone."""

    def __init__(self, nets: list[MLP]):
        super().__init__()
        first = nets[0]
        self.members = len(nets)
        self.layers = nn.ModuleList(
            StackedLinear(len(nets), layer.in_features, layer.out_features)
            for layer in first.layers
        )
        self.activation = first.activation  # stateless, shared
        states = [net.state_dict() for net in nets]
        self.load_state_dict({name: torch.stack([s[name] for s in states]) for name in states[0]})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (K, B, in), one batch per member, or (B, in) shared by all; returns (K, B, 1)."""
        if x.dim() == 2:
            x = x.expand(self.members, *x.shape)
        *hidden, last = self.layers
        for layer in hidden:
            x = self.activation(layer(x))
        return last(x)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights, named as an MLP's (`MLP.load_state_dict` takes them)."""
        return {name: t[k].clone() for name, t in self.state_dict().items()}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
