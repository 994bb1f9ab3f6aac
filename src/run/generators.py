"""Generated 2-D binary classification data sets (plain torch), registered in schema.GENERATORS:
(n, noise, torch.Generator, **own settings) -> float32 inputs (n, 2) and labels (n,) in {0, 1}.
"""

from __future__ import annotations

import math

import torch

from src.run.schema import GENERATORS


def make_xor(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous XOR: corners of the unit square, label x0 XOR x1, Gaussian noise added."""
    corners = torch.randint(0, 2, (n, 2), generator=gen).float()
    labels = (corners[:, 0] != corners[:, 1]).float()
    return corners + noise * torch.randn(n, 2, generator=gen), labels


def make_moons(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles; class 1 is the lower one, shifted right."""
    labels = torch.randint(0, 2, (n,), generator=gen).float()
    angle = math.pi * torch.rand(n, generator=gen)
    x = torch.where(labels == 0, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(labels == 0, torch.sin(angle), 0.5 - torch.sin(angle))
    return torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, generator=gen), labels


def make_circles(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two concentric circles; class 1 is the inner one (radius 0.5, outer radius 1)."""
    labels = torch.randint(0, 2, (n,), generator=gen).float()
    angle = 2 * math.pi * torch.rand(n, generator=gen)
    radius = 1 - 0.5 * labels
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return points + noise * torch.randn(n, 2, generator=gen), labels


def make_spirals(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals of 1.5 turns each; class 1 is the first rotated by half a turn."""
    labels = torch.randint(0, 2, (n,), generator=gen).float()
    t = torch.rand(n, generator=gen)
    angle = 3 * math.pi * t + math.pi * labels
    radius = 0.1 + 0.9 * t
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return points + noise * torch.randn(n, 2, generator=gen), labels


def make_splits(
    name: str, n_train: int, n_val: int, n_test: int, noise: float, seed: int, **own: float
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train, validation and test points drawn in one go from a generator seeded once."""
    gen = torch.Generator().manual_seed(seed)
    # float: an integer noise over 2**63 would not fit torch's int64 scalar
    x, y = GENERATORS[name](n_train + n_val + n_test, float(noise), gen, **own)
    bounds = {
        "train": (0, n_train),
        "val": (n_train, n_train + n_val),
        "test": (n_train + n_val, len(x)),
    }
    return {split: (x[lo:hi], y[lo:hi]) for split, (lo, hi) in bounds.items()}
