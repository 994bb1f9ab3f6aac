"""The plain-torch MLP, and K of them stacked into one module that trains them side by side.

`StackedMLP` gives every parameter and buffer of K same-shape MLPs a leading member axis and
runs them in one pass of batched ops; member k's state, `{name: tensor[k]}`, loads into an MLP.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}
NORMS: dict[str, type[nn.Module] | None] = {
    "none": None,
    "layer": nn.LayerNorm,  # over the width, per sample
    "batch": nn.BatchNorm1d,  # over the batch, per unit; running statistics in eval mode
}
INITS = ("default", "xavier", "kaiming", "orthogonal")
# kaiming's gain for the activation after a hidden layer (calculate_gain's names; GELU: ReLU's).
KAIMING_NONLINEARITY = {
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "gelu": "relu",
    "identity": "linear",
}


class MLP(nn.Module):
    """`depth` hidden layers of `width` units, then one logit; depth 0 is logistic regression.

    Hidden layer i maps h to `act(norm(W_i h + b_i))`; with `residual`, every hidden layer after
    the first adds h to that (the skip goes around the norm too). `init`: see `init_linears`.
    """

    def __init__(
        self,
        depth: int,
        width: int,
        activation: str = "tanh",
        in_features: int = 2,
        residual: bool = False,
        norm: str = "none",
        init: str = "default",
    ):
        super().__init__()
        sizes = [in_features] + [width] * depth + [1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        norm_layer = NORMS[norm]
        if norm_layer is not None:
            self.norms = nn.ModuleList(norm_layer(width) for _ in range(depth))
        self.norm, self.residual = norm, bool(residual)
        self.activation = ACTIVATIONS[activation]()
        init_linears(self.layers, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp_forward(self, x)


def seeded_mlp(seed: int, **net_args) -> MLP:
    """The MLP a single run of this seed starts from (its own random stream, not the caller's)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(**net_args)


def mlp_forward(net: MLP | StackedMLP, x: torch.Tensor) -> torch.Tensor:
    """The forward pass of an MLP, or of a StackedMLP (whose layers take (K, B, features))."""
    h = x
    for _, output in hidden_layers(net, x):
        h = output
    return net.layers[-1](h)


def hidden_layers(
    net: MLP | StackedMLP, x: torch.Tensor
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each hidden layer's activation output `act(norm(W h + b))` and its output (with
    `residual`, the input added)."""
    for i, layer in enumerate(net.layers[:-1]):
        z = layer(x)
        if net.norm != "none":
            z = net.norms[i](z)
        z = net.activation(z)
        x = x + z if net.residual and i > 0 else z
        yield z, x


def dead_units(net: StackedMLP, x: torch.Tensor) -> list[list[float]]:
    """Per member, per hidden layer: the share of units whose output is 0 on every sample of x
    (B, in), as a relu that never activates; in eval mode, without gradients."""
    training = net.training
    x = x.expand(net.members, *x.shape)
    net.eval()
    try:
        with torch.no_grad():
            shares = [
                (z == 0).all(dim=1).float().mean(dim=-1) for z, _ in hidden_layers(net, x)
            ]  # each (K,)
    finally:
        net.train(training)
    return torch.stack(shares, dim=1).tolist() if shares else [[] for _ in range(net.members)]


def init_linears(layers: nn.ModuleList, init: str, activation: str) -> None:
    """Draw every Linear's weight again as `init` says, after PyTorch's init ("default": left
    as it is), and zero its bias: xavier_uniform_, kaiming_uniform_ with the gain of the
    activation after it (1 for the output layer), or orthogonal_."""
    if init == "default":
        return
    if init not in INITS:
        raise ValueError(f"init={init!r}: one of {', '.join(INITS)}")
    for i, layer in enumerate(layers):
        if init == "xavier":
            nn.init.xavier_uniform_(layer.weight)
        elif init == "kaiming":
            output = i == len(layers) - 1
            nonlinearity = "linear" if output else KAIMING_NONLINEARITY[activation]
            nn.init.kaiming_uniform_(layer.weight, nonlinearity=nonlinearity)
        else:
            nn.init.orthogonal_(layer.weight)
        nn.init.zeros_(layer.bias)


def mlp_from_hparams(hparams: Mapping[str, Any]) -> MLP:
    """The MLP a saved model.pt's hparams describe, in eval mode, ready for its state dict;
    files older than the depth options get the defaults."""
    keys = ("depth", "width", "activation", "in_features", "residual", "norm", "init")
    return MLP(**{key: hparams[key] for key in keys if key in hparams}).eval()


class StackedLinear(nn.Module):
    """K Linear layers of one shape: weight (K, out, in), bias (K, out); input (K, B, in)."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))

    @classmethod
    def like(cls, layer: nn.Linear, members: int) -> StackedLinear:
        return cls(members, layer.in_features, layer.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedLayerNorm(nn.Module):
    """K LayerNorms over the last dim: weight and bias (K, width); input (K, B, width)."""

    def __init__(self, members: int, width: int, eps: float = 1e-5):
        super().__init__()
        self.width, self.eps = width, eps
        self.weight = nn.Parameter(torch.ones(members, width))
        self.bias = nn.Parameter(torch.zeros(members, width))

    @classmethod
    def like(cls, layer: nn.LayerNorm, members: int) -> StackedLayerNorm:
        return cls(members, layer.normalized_shape[-1], layer.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.layer_norm(x, (self.width,), eps=self.eps)
        return torch.addcmul(self.bias.unsqueeze(1), normed, self.weight.unsqueeze(1))


class StackedBatchNorm(nn.Module):
    """K BatchNorm1d over the batch: weight, bias and running statistics (K, width), batches
    tracked (K,); input (K, B, width)."""

    def __init__(self, members: int, width: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(members, width))
        self.bias = nn.Parameter(torch.zeros(members, width))
        self.register_buffer("running_mean", torch.zeros(members, width))
        self.register_buffer("running_var", torch.ones(members, width))
        self.register_buffer("num_batches_tracked", torch.zeros(members, dtype=torch.long))

    @classmethod
    def like(cls, layer: nn.BatchNorm1d, members: int) -> StackedBatchNorm:
        if layer.momentum is None or not (layer.affine and layer.track_running_stats):
            raise ValueError("only BatchNorm1d's defaults are stacked (affine, running stats)")
        return cls(members, layer.num_features, layer.eps, layer.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One batch_norm call whose channels are the K * width (member, unit) pairs: each
        # channel is normalized over its member's batch, as its own BatchNorm1d would. The
        # flat views share the buffers' storage, so the running statistics update in place.
        members, batch, width = x.shape
        flat = x.transpose(0, 1).reshape(batch, members * width)
        out = F.batch_norm(
            flat,
            self.running_mean.view(-1),
            self.running_var.view(-1),
            self.weight.view(-1),
            self.bias.view(-1),
            self.training,
            self.momentum,
            self.eps,
        )
        if self.training:
            self.num_batches_tracked.add_(1)
        return out.view(batch, members, width).transpose(0, 1)


STACKED: dict[type[nn.Module], Any] = {
    nn.Linear: StackedLinear,
    nn.LayerNorm: StackedLayerNorm,
    nn.BatchNorm1d: StackedBatchNorm,
}


class StackedMLP(nn.Module):
    """K MLPs of one shape as one module, built from them: member k sees only its own slice of
    every parameter and buffer, so its gradient is the one it would get alone."""

    def __init__(self, nets: list[MLP]):
        super().__init__()
        first = nets[0]
        self.members = len(nets)
        self.norm, self.residual = first.norm, first.residual
        self.activation = first.activation  # stateless, shared
        for name in ("layers", "norms"):
            if hasattr(first, name):
                stacked = (STACKED[type(m)].like(m, self.members) for m in getattr(first, name))
                setattr(self, name, nn.ModuleList(stacked))
        states = [net.state_dict() for net in nets]
        self.load_state_dict({name: torch.stack([s[name] for s in states]) for name in states[0]})
        # For weight_grad_norms: the Linear weights, and the runs of consecutive same-shape
        # weights (the hidden-to-hidden ones), which share one norm over their stack.
        self._weights = tuple(layer.weight for layer in self.layers)
        shapes = [w.shape for w in self._weights]
        runs = [len(list(run)) for _, run in itertools.groupby(shapes)]
        ends = list(itertools.accumulate(runs))
        self._weight_runs = tuple(zip([0, *ends[:-1]], ends))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (K, B, in), one batch per member, or (B, in) shared by all; returns (K, B, 1)."""
        if x.dim() == 2:
            x = x.expand(self.members, *x.shape)
        return mlp_forward(self, x)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights and buffers, named as an MLP's (`MLP.load_state_dict` takes them)."""
        return {name: t[k].clone() for name, t in self.state_dict().items()}

    def weight_grad_norms(self) -> torch.Tensor:
        """(depth + 1, K): each member's Frobenius norm of each Linear weight's gradient, input
        layer first; zeros before the first backward pass. On the device: no host sync."""
        if self._weights[0] is not self.layers[0].weight:  # parameters swapped, not copied
            self._weights = tuple(layer.weight for layer in self.layers)
        grads = [w.grad for w in self._weights]
        if any(g is None for g in grads):
            return torch.zeros(len(grads), self.members, device=self._weights[0].device)
        return torch.cat(
            [
                torch.linalg.vector_norm(torch.stack(grads[a:b]), dim=(2, 3))
                for a, b in self._weight_runs
            ]
        )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
