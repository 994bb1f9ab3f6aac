"""The fitting study (exercise 2l): train a Var or matrix-backend net on the course's data.

    python -m src.autodiff.train                          # the course's default run
    python -m src.autodiff.train experiment=overfit       # underfit | overfit | goodfit
    python -m src.autodiff.train backend=matrix train.batch_size=16 schedule.name=step

Writes into the Hydra output folder: loss_curves.png (linear and log-log), fit.png (the fit
on the test points), metrics.json, and the wandb run (offline by default) or metrics.csv.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.autodiff.data import make_data, split_points
from src.autodiff.matrix import MatrixNet
from src.autodiff.nn import build_network, squared_error
from src.autodiff.schedules import make_schedule
from src.autodiff.schema import DataConf, ModelConf, check_keys, check_values
from src.errors import ConfigError, exit_on_config_error
from src.folders import make_folder
from src.memory import format_bytes, memory_available

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "autodiff"


def check_config(cfg: DictConfig) -> None:
    """Refuse every key the study does not read and every value it cannot run with, naming
    the key (raises ConfigError)."""
    check_keys(cfg)
    check_values(cfg)
    check_memory(cfg)


# Bytes measured (tracemalloc, the peak of one step), rounded up: a Var graph keeps up to 250
# per weight and sample; the matrix backend 48 per unit and sample and 8 float64 copies of each
# weight; the data 40 per number drawn (its copies while split and standardised).
VAR_BYTES, MATRIX_BYTES, MATRIX_WEIGHT_BYTES, DATA_BYTES = 256, 48, 64, 40
# The size settings' defaults (the schema's), against which the costliest is found.
SIZE_DEFAULTS = {"data.n_samples": DataConf().n_samples, "model.hidden": ModelConf().hidden}


def memory_needed(
    n_samples: int, dims: int, hidden: list[int], batch_size: int | None, backend: str
) -> int:
    """About how many bytes a run takes at its peak: its data, the net, and the largest pass
    through it (a training batch, or a whole validation or test split)."""
    sizes = [dims, *hidden, 1]
    params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    n_train, n_train_val = split_points(n_samples)
    batch = min(batch_size or n_train, n_train)
    samples = max(batch, n_train_val - n_train, n_samples - n_train_val)
    if backend == "var":
        net = VAR_BYTES * params * (1 + samples)
    else:
        net = MATRIX_WEIGHT_BYTES * params + MATRIX_BYTES * samples * sum(sizes)
    return DATA_BYTES * n_samples * (dims + 1) + net


def check_memory(cfg: DictConfig) -> None:
    """Refuse a run that would not fit in the memory free now, naming the size setting whose
    default would save the most."""
    size = {"data.n_samples": cfg.data.n_samples, "model.hidden": list(cfg.model.hidden)}

    def needed(n_samples: int, hidden: list[int]) -> int:
        return memory_needed(n_samples, cfg.data.dims, hidden, cfg.train.batch_size, cfg.backend)

    total, available = needed(*size.values()), memory_available()
    if total <= available:
        return
    key = min(SIZE_DEFAULTS, key=lambda k: needed(*(size | {k: SIZE_DEFAULTS[k]}).values()))
    raise ConfigError(
        key,
        size[key],
        f"a run that fits in memory: this one needs about {format_bytes(total)}, "
        f"{format_bytes(available)} available",
    )


# ---- the two backends behind one interface: step (one SGD update), loss, predict


class VarModel:
    """The network as a graph of Vars, rebuilt for every forward pass."""

    def __init__(self, network, kind: str):
        self.network, self.kind = network, kind

    def step(self, x: np.ndarray, t: np.ndarray, lr: float) -> float:
        """One SGD update on (x, t); returns the batch's summed squared error before it."""
        sse = squared_error(self.network(x.tolist()), t.tolist())
        (sse if self.kind == "sum" else sse / t.size).backward()
        self.network.sgd_step(lr)
        self.network.zero_grad()
        return sse.v

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        sse = squared_error(self.network(x.tolist()), t.tolist()).v
        return sse if self.kind == "sum" else sse / t.size

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.array([[y.v for y in self.network.forward(row)] for row in x.tolist()])


class MatrixModel:
    """The same network as numpy arrays, trained with the delta rule."""

    def __init__(self, network, kind: str):
        self.net, self.kind = MatrixNet.from_layers(network), kind

    def step(self, x: np.ndarray, t: np.ndarray, lr: float) -> float:
        loss, grad_W, grad_b = self.net.gradients(x, t, self.kind)
        self.net.sgd_step(grad_W, grad_b, lr)
        return loss if self.kind == "sum" else loss * t.size

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        return self.net.loss(x, t, self.kind)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.net.predict(x)


class Logger:
    """Each epoch's row to wandb (logger=wandb), metrics.csv (logger=csv) or nowhere; close()
    at the end, also after an error."""

    def __init__(self, cfg: DictConfig, out_dir: Path | None):
        self.run = self.file = self.writer = None
        if cfg.logger == "wandb":
            import wandb

            self.run = wandb.init(
                project=cfg.wandb.project,
                mode=os.environ.get("WANDB_MODE") or cfg.wandb.mode,
                dir=str(out_dir) if out_dir else None,
                config=OmegaConf.to_container(cfg, resolve=True),
            )
        elif cfg.logger == "csv" and out_dir is not None:
            self.file = open(out_dir / "metrics.csv", "w", newline="")  # noqa: SIM115

    def log(self, row: dict) -> None:
        if self.run is not None:
            self.run.log(row)
        elif self.file is not None:
            if self.writer is None:
                self.writer = csv.DictWriter(self.file, fieldnames=list(row))
                self.writer.writeheader()
            self.writer.writerow(row)

    def summary(self, metrics: dict) -> None:
        if self.run is not None:
            self.run.summary.update({k: v for k, v in metrics.items() if k != "history"})

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
        elif self.file is not None:
            self.file.close()


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def train(cfg: DictConfig) -> dict:
    """Train once as `cfg` says; returns (and writes to cfg.output_dir) the metrics."""
    check_config(cfg)
    out_dir = Path(cfg.output_dir) if cfg.output_dir is not None else None
    if out_dir is not None:
        make_folder("output_dir", out_dir)

    data = make_data(cfg.data.noise, cfg.data.n_samples, cfg.data.dims, cfg.data.seed)
    rng = np.random.default_rng(cfg.seed)
    m = cfg.model
    sizes = [data.x_train.shape[1], *m.hidden, 1]
    network = build_network(
        sizes, m.activation, m.output_activation, m.initializer, rng, m.init_std
    )
    model = (VarModel if cfg.backend == "var" else MatrixModel)(network, cfg.train.loss)
    schedule = make_schedule(cfg.train.lr, **cfg.schedule)
    n_train, epochs = len(data.x_train), cfg.train.epochs
    batch_size = min(cfg.train.batch_size or n_train, n_train)

    history = {"epoch": [], "train_loss": [], "val_loss": [], "lr": []}
    status = "ok"
    logger = Logger(cfg, out_dir)
    start = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(epochs):
                lr = schedule.lr
                order = rng.permutation(n_train) if batch_size < n_train else np.arange(n_train)
                try:
                    sse = sum(
                        model.step(data.x_train[idx], data.y_train[idx], lr)
                        for idx in np.array_split(order, math.ceil(n_train / batch_size))
                    )
                    val_loss = model.loss(data.x_val, data.y_val)
                except OverflowError:  # Python floats raise where numpy gives inf
                    sse = val_loss = math.inf
                train_loss = sse if cfg.train.loss == "sum" else sse / data.y_train.size

                row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "lr": lr}
                for key, value in row.items():
                    history[key].append(value)
                logger.log(row)
                if cfg.print_every and (epoch % cfg.print_every == 0 or epoch == epochs - 1):
                    print(
                        f"{epoch + 1:6d}  train loss {train_loss:10.4f}  "
                        f"validation loss {val_loss:10.4f}  lr {lr:.3g}"
                    )
                if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                    status = "diverged"
                    break
                schedule.after_epoch(epoch, train_loss)
            try:
                test_loss = model.loss(data.x_test, data.y_test)
            except OverflowError:
                test_loss = math.inf
        seconds = time.perf_counter() - start

        finite = [(v, e) for e, v in zip(history["epoch"], history["val_loss"]) if math.isfinite(v)]
        best_val_loss, best_val_epoch = min(finite, default=(None, None))  # the first lowest
        metrics = {
            "status": status,
            "backend": cfg.backend,
            "epochs_run": len(history["epoch"]),
            "train_loss": _finite(train_loss),
            "val_loss": _finite(val_loss),
            "test_loss": _finite(test_loss),
            "best_val_loss": best_val_loss,
            "best_val_epoch": best_val_epoch,
            "seconds": seconds,
            "history": {k: [_finite(v) for v in vs] for k, vs in history.items()},
        }
        logger.summary(metrics)
        if out_dir is not None:
            from src.autodiff.plots import plot_fit, plot_losses

            (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
            title = f"{sizes} {m.activation}, {cfg.backend}"
            plot_losses(history, out_dir / "loss_curves.png", title)
            if status == "ok":
                plot_fit(data, model.predict, out_dir / "fit.png", title)
    finally:
        logger.close()
    print(
        f"status {status}: train {metrics['train_loss']}, validation {metrics['val_loss']}, "
        f"test {metrics['test_loss']} after {metrics['epochs_run']} epochs, {seconds:.2f} s"
    )
    return metrics


def compose_config(*overrides: str) -> DictConfig:
    """conf/autodiff/train.yaml with `overrides`, for a run in this process (no logger, no
    printing, no files)."""
    from hydra import compose, initialize_config_dir

    quiet = ["logger=none", "print_every=0", "output_dir=null"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[*overrides, *quiet])


@hydra.main(version_base="1.3", config_path="../../conf/autodiff", config_name="train")
@exit_on_config_error
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the final validation loss (what a sweeper minimises)."""
    return train(cfg)["val_loss"]


if __name__ == "__main__":
    main()
