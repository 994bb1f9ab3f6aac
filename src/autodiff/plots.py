"""The fitting study's two figures: loss curves (linear and log-log) and the fit on the test set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from src.autodiff.data import Data  # noqa: E402


def plot_losses(history: dict, path: Path, title: str = "") -> None:
    epochs = history["epoch"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, scale in zip(axes, ("linear", "log")):
        ax.plot(epochs, history["train_loss"], label="train")
        ax.plot(epochs, history["val_loss"], label="validation")
        ax.set_xscale(scale)
        ax.set_yscale(scale)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(("log-log" if scale == "log" else "linear") + (f": {title}" if title else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_fit(
    data: Data, predict: Callable[[np.ndarray], np.ndarray], path: Path, title: str = ""
) -> None:
    """1-D data: the data, the test predictions and the learned curve. 3-D data: against x1."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    axis = 0 if data.x_train.shape[1] == 1 else 1
    ax.scatter(data.x_train[:, axis], data.y_train[:, 0], s=10, alpha=0.4, label="train data")
    ax.scatter(data.x_test[:, axis], data.y_test[:, 0], s=14, label="test data")
    ax.scatter(data.x_test[:, axis], predict(data.x_test)[:, 0], s=14, label="test prediction")
    if data.x_train.shape[1] == 1:
        lo = min(data.x_train.min(), data.x_test.min())
        hi = max(data.x_train.max(), data.x_test.max())
        grid = np.linspace(lo, hi, 400).reshape(-1, 1)
        ax.plot(grid[:, 0], predict(grid)[:, 0], color="k", lw=1, label="model")
    ax.set_xlabel(f"x{axis if axis else ''} (standardised)")
    ax.set_ylabel("y (standardised)")
    ax.set_title(title or "fit on the test points")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
