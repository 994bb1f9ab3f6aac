"""The plain-torch MLP, and K of them stacked into one module that trains them side by side.

`MLP` is the reference network: `depth` hidden layers of `width` units and one logit, with
optional skip connections (`residual`), a normalization layer per hidden layer (`norm`) and a
weight initialisation (`init`). `StackedMLP` holds K MLPs of one shape with every parameter and
buffer given a leading member axis (weights (K, out, in)), and runs all of them in one pass of
batched ops. Its state dict has the MLP's names, so member k's state is `{name: tensor[k]}`
(`member_state`) and loads into an MLP as it is.
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
# kaiming's gain for the activation after a hidden layer (torch.nn.init.calculate_gain's names;
# GELU has none of its own and takes ReLU's).
KAIMING_NONLINEARITY = {
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "gelu": "relu",
    "identity": "linear",
}


class MLP(nn.Module):
    """`depth` hidden layers of `width` units with `activation`, then one logit (no activation).

    Hidden layer i maps h to `act(norm(W_i h + b_i))`: the normalization (`norm`: "layer" is a
    LayerNorm over the width, "batch" a BatchNorm1d over the batch; "none" leaves it out) sits
    between the Linear and the activation. With `residual`, every hidden layer after the first
    adds its input to that: `h + act(norm(W_i h + b_i))` (the skip goes around the whole
    branch, norm included); the first hidden layer (in_features -> width) and the output layer
    have no skip. `init` is applied after PyTorch's Linear init, to every Linear, output layer
    included (see `init_linears`). depth 0 is logistic regression (no norm, no skip).

    The defaults (residual=False, norm="none", init="default") are the network as it always
    was: the same modules, the same draws from the random stream, the same state dict names.
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
    """The MLP a single run with this seed starts from (its own random stream, not the caller's)."""
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
    """Each hidden layer's activation output `act(norm(W h + b))` and the layer's output (the
    same, or with `residual` the input added to it), first layer first."""
    for i, layer in enumerate(net.layers[:-1]):
        z = layer(x)
        if net.norm != "none":
            z = net.norms[i](z)
        z = net.activation(z)
        x = x + z if net.residual and i > 0 else z
        yield z, x


def dead_units(net: StackedMLP, x: torch.Tensor) -> list[list[float]]:
    """Per member, per hidden layer: the share of its units whose activation output is exactly
    0 on every sample of x (B, in), as a relu that never activates (tanh, sigmoid, gelu have
    none). Evaluated in eval mode (BatchNorm's running statistics), without gradients."""
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
    """Initialise every Linear's weight as `init` says and zero its bias.

    "default" changes nothing: PyTorch's own Linear init (kaiming_uniform_ with a=sqrt(5),
    i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for weight and bias). The others draw the weights
    again, from the same random stream, after that init:
    "xavier": xavier_uniform_, gain 1, U(-a, a) with a = sqrt(6 / (fan_in + fan_out));
    "kaiming": kaiming_uniform_ (fan_in mode), U(-a, a) with a = gain * sqrt(3 / fan_in), the
    gain of the activation that follows the layer (KAIMING_NONLINEARITY: tanh 5/3, relu and
    gelu sqrt(2), sigmoid and identity 1), and gain 1 ("linear") for the output layer;
    "orthogonal": orthogonal_, gain 1 (a square weight is an orthogonal matrix; otherwise its
    rows, or its columns, whichever are fewer, are orthonormal).
    """
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
    """The MLP a saved model.pt's hparams describe, in eval mode (BatchNorm's running
    statistics), ready for `load_state_dict(saved["state_dict"])`; files written before the
    depth options existed have the defaults."""
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
    tracked (K,); input (K, B, width). Training normalizes each member's batch with its own
    statistics and updates its own running ones; eval uses the running ones."""

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
    """K MLPs of one shape trained as one module: member k sees only its own slice of every
    parameter and buffer, so its gradient is the one it would get alone.

    Built from the member MLPs themselves: each of their layers (Linear, LayerNorm,
    BatchNorm1d) becomes its stacked counterpart under the same name, their options are
    taken over, and their state dicts are stacked into it."""

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
        # For weight_grad_norms, once: the Linear weights (loading a state dict or moving to a
        # device copies into the same Parameter objects; looked up again if swapped), and
        # the runs of consecutive layers whose weights have one shape (the hidden-to-hidden
        # ones), which share one norm over their stack.
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
        """(depth + 1, K): the L2 norm of each Linear weight's gradient (the Frobenius norm of
        its (out, in) matrix), input layer first, over each member's own slice; zeros before
        the first backward pass. Stays on the tensors' device (no host sync).

        4 ops a step at any depth (a norm per run of same-shape weights, and their cat): at
        depth 20 about 20 us a step on one CPU thread, against 50 us for one norm per layer."""
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
