"""The course's regression data (notebook 2.1, `data_generator`), reproduced draw for draw.

1-D: x = linspace(-3, 3, n) shuffled, y ~ Normal(0.5 sin(3x) + x, noise).
3-D: x ~ Normal(0, noise * I3), y = sin(x0) - 5 x1^2 + 0.5 x2.
Split at 35% and 70% (300 points: train 105, validation 105, test 90), then x and y
standardised with the training set's mean and standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Data:
    """Arrays of shape (samples, inputs) for x and (samples, 1) for y."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def draw(
    noise: float = 0.5, n_samples: int = 300, dims: int = 1, seed: int = 42
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The course's points before they are split and standardised: x (samples, dims), y and
    the noiseless target f(x) (samples,); `np.random.RandomState(seed)` gives the same draws as
    its `np.random.seed(42)` followed by `data_generator(noise=0.5)`."""
    rng = np.random.RandomState(seed)
    if dims == 1:
        x = np.linspace(-3, 3, num=n_samples).reshape(-1, 1)
        rng.shuffle(x)
        target = 0.5 * np.sin(3 * x[:, 0]) + x[:, 0]
        y = rng.normal(target, noise)
    elif dims == 3:
        x = rng.multivariate_normal(np.zeros(3), noise * np.eye(3), size=n_samples)
        rng.shuffle(x)
        y = target = np.sin(x[:, 0]) - 5 * x[:, 1] ** 2 + 0.5 * x[:, 2]
    else:
        raise ValueError(f"make_data: dims must be 1 or 3, got {dims!r}")
    return x, y, target


def split_points(n_samples: int) -> list[int]:
    """Where the data are split: train, validation and test are 35%, 35% and 30%."""
    return [int(0.35 * n_samples), int(0.7 * n_samples)]


def make_data(noise: float = 0.5, n_samples: int = 300, dims: int = 1, seed: int = 42) -> Data:
    """The course's data, split and standardised with the training set's mean and std."""
    x, y, _ = draw(noise, n_samples, dims, seed)
    data = np.column_stack([x, y])
    train, val, test = np.split(data, split_points(n_samples))
    mu, sigma = train.mean(axis=0), train.std(axis=0)
    train, val, test = ((part - mu) / sigma for part in (train, val, test))
    return Data(train[:, :-1], train[:, -1:], val[:, :-1], val[:, -1:], test[:, :-1], test[:, -1:])
