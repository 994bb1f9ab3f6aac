"""One training run, from a composed config to each seed's files: `train` and `train_stack`.

`validate(cfg)` (validation.py) refuses, before any training, what the run cannot use or this
machine cannot run.
"""

from __future__ import annotations

import gc
import logging
import math
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.run.files import METRICS_FILE, no_space, run_group, write_error, write_json_atomic
from src.run.loggers import WandbPlace, build_logger, close_logger, wandb_link
from src.run.schema import SEED_KEY, STACK_KEY
from src.run.validation import validate

log = logging.getLogger(__name__)

# Lightning's start-up noise and advice meant for big data sets; the `srun` hint is printed
# wherever SLURM's client is installed (a sweep's job on SLURM runs inside submitit's srun).
QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*is smaller than the logging interval.*",
    ".*LeafSpec.*is deprecated.*",
    "The `srun` command is available",
)


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _set_up_torch(trainer: DictConfig) -> None:
    """Torch's threads for this job, and Lightning without its noise."""
    import torch

    torch.set_num_threads(trainer.num_threads)
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def _training_stack():
    """Lightning and the classes built on it, imported on first use: a wrong value is refused
    before this import (about 5 s), and a sweep's main process never pays for it."""
    first_import = "pytorch_lightning" not in sys.modules
    import pytorch_lightning as pl

    from src.run.data import GeneratedDataModule
    from src.run.model import MLPClassifier

    if first_import:  # keeps the garbage collector off its millions of long-lived objects
        gc.freeze()
    return pl, GeneratedDataModule, MLPClassifier


def train(cfg: DictConfig) -> dict[str, Any]:
    """One run of `cfg.seed`: train, test, save weights and metrics.json; return the metrics."""
    return train_stack(cfg, [cfg.seed], {cfg.seed: Path(cfg.output_dir)})[cfg.seed]


def member_config(config: dict[str, Any], seed: int, output_dir: Path) -> dict[str, Any]:
    """The resolved config of a single run of `seed`, as if trained alone into `output_dir`."""
    return {**config, SEED_KEY: seed, STACK_KEY: None, "output_dir": str(output_dir)}


@dataclass(frozen=True)
class _Run:
    """One seed of the stack that is written: its index in the stack, its folder, its config
    (a single run's)."""

    seed: int
    member: int
    out: Path
    config: dict[str, Any]


def train_stack(
    cfg: DictConfig,
    seeds: list[int],
    out_dirs: dict[int, Path],
    group: str | None = None,
    callbacks: list[Any] | None = None,
    wandb_places: dict[int, WandbPlace] | None = None,
) -> dict[int, dict[str, Any]]:
    """Train the seeds together as one stacked model; write each seed of `out_dirs` as a run of
    that seed alone (metrics.json, model.pt, logger files) and return its metrics.

    Seeds left out of `out_dirs` are trained but not written (a resumed stack). A seed whose
    files cannot be written is returned as failed; a full disk raises its OSError.
    group: the logger group (default: the configuration without the seed); callbacks: the
    fit's (a search's pruning); wandb_places: each seed's wandb run (default: its folder).
    """
    validate(cfg)
    pl, GeneratedDataModule, MLPClassifier = _training_stack()
    from src.run.nets import count_parameters

    start = time.perf_counter()
    _set_up_torch(cfg.trainer)
    data = GeneratedDataModule.from_config(cfg.data, seeds)
    model = MLPClassifier.from_config(cfg.model, seeds)
    n_params = count_parameters(model.net) // len(seeds)  # of one member
    config = OmegaConf.to_container(cfg, resolve=True)
    runs = [
        _Run(seed, seeds.index(seed), out, member_config(config, seed, out))
        for seed, out in out_dirs.items()
    ]
    if not group:
        hydra = HydraConfig.get().job.override_dirname if HydraConfig.initialized() else None
        group = run_group(hydra)
    with _member_loggers(cfg.logger, runs, group, model, n_params, wandb_places or {}) as loggers:
        links = {run.seed: wandb_link(loggers.get(run.member), run.out) for run in runs}
        trainer = _trainer(pl, cfg.trainer, loggers, out_dirs, callbacks)
        trainer.fit(model, datamodule=data)
        trainer.test(model, datamodule=data, verbose=False)
        dead = _dead_units(model, data)  # not logged: the wandb run's last row is the test's
    extras = {"n_params": n_params, "seconds": time.perf_counter() - start}
    return {
        run.seed: _write_run(
            run, model, {**extras, **dead[run.member], "stacked_with": seeds, **links[run.seed]}
        )
        for run in runs
    }


def _dead_units(model: Any, data: Any) -> list[dict[str, Any]]:
    """Each member's share of hidden units that never activate on the validation set, over all
    its hidden layers (None at depth 0) and per layer."""
    from src.run.nets import dead_units

    x = data.splits["val"].tensors[0].to(next(model.parameters()).device)
    return [
        {"dead_units": sum(layers) / len(layers) if layers else None, "dead_units_by_layer": layers}
        for layers in dead_units(model.net, x)
    ]


@contextmanager
def _member_loggers(
    cfg: DictConfig,
    runs: list[_Run],
    group: str,
    model: Any,
    n_params: int,
    wandb_places: dict[int, WandbPlace],
) -> Iterator[dict[int, Any]]:
    """Each written seed's logger by its member of the stack, handed to the model (which logs
    each member's rows to its own run); all closed at the end, as failed if anything fails."""
    loggers, failed = {}, False
    try:
        for run in runs:
            run.out.mkdir(parents=True, exist_ok=True)
            name, concurrent = f"{group}/seed={run.seed}", len(runs) > 1
            place = wandb_places.get(run.seed, WandbPlace(run.out))
            logger = build_logger(cfg, run.out, group, name, run.config, concurrent, place)
            if logger is not None:
                logger.log_hyperparams({"n_params": n_params})
                loggers[run.member] = logger
        if cfg.get("watch") and loggers:  # one seed: validate() refuses watching a stack
            # idx=0: wandb numbers the models watched in one process (graph_1..., in a
            # multirun's later jobs); the same histogram names in every job line them up.
            watch = {"log": cfg.watch_log, "log_freq": cfg.watch_log_freq}
            loggers[0].experiment.watch(model, **watch, idx=0)
        model.member_loggers = loggers
        yield loggers
    except BaseException:
        failed = True
        raise
    finally:
        for logger in loggers.values():
            close_logger(logger, failed)


def _trainer(
    pl: Any,
    cfg: DictConfig,
    loggers: dict[int, Any],
    out_dirs: dict[int, Path],
    callbacks: list[Any] | None,
) -> Any:
    """The Trainer of the fit and the test: no checkpoints (the weights are saved once, at the
    end), no sanity validation (it would not be in the history anyway)."""
    # Given, not detected: detection prints an `srun` hint, and Lightning's SLURM handling
    # would requeue a batch job at its time limit, which the sweep's launcher owns.
    from lightning_fabric.plugins.environments import LightningEnvironment

    progress_bar = cfg.progress_bar
    if progress_bar is None:  # a bar for a single run, none in a multirun's log
        progress_bar = HydraConfig.initialized() and not is_multirun()
    return pl.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        logger=list(loggers.values()) or False,
        enable_progress_bar=progress_bar,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=next(iter(out_dirs.values()), None),
        callbacks=callbacks,
        plugins=[LightningEnvironment()],
    )


def _write_run(run: _Run, model: Any, extras: dict[str, Any]) -> dict[str, Any]:
    """Write one seed's model.pt and metrics.json (its metrics, then `extras`) and return its
    metrics; a seed whose files cannot be written is failed, a full disk is raised."""
    k = run.member
    metrics = {
        **run_metrics(model.history[k], model.test_metrics[k], model.status[k]),
        **extras,
        "history": model.history[k],
        "config": run.config,
    }
    hparams = {key: v for key, v in model.hparams.items() if key != STACK_KEY}
    state = {name: t.cpu() for name, t in model.net.member_state(k).items()}
    path = run.out / "model.pt"
    try:
        _save_weights({"hparams": hparams, "state_dict": state}, path)
        path = run.out / METRICS_FILE
        write_json_atomic(path, metrics)
    except OSError as error:  # a read-only folder: the error says it all
        if no_space(error):  # the disk is full: the run (or the sweep) ends here
            raise OSError(error.errno, error.strerror, str(path)) from None
        metrics = {"status": "failed", "error": write_error(path, error)}
    except Exception as error:  # a bug: its traceback goes to the log
        log.exception(f"seed={run.seed}: {path} could not be written")
        metrics = {"status": "failed", "error": write_error(path, error)}
    return metrics


def _save_weights(checkpoint: dict[str, Any], path: Path) -> None:
    """torch.save, a failure to write raised as its OSError (torch's RuntimeError lost the
    errno: "file write failed", "cannot be opened")."""
    import torch

    try:
        torch.save(checkpoint, path)
    except RuntimeError:
        with open(path, "wb") as file:  # the same write, in Python: raises the OSError
            file.write(b"\0")
            file.flush()
        path.unlink()  # it could be written after all: not an OSError, torch's error stands
        raise


def run_metrics(
    history: list[dict[str, float]], test: dict[str, float], status: str
) -> dict[str, Any]:
    """The summary of one run: its final epoch, its best validation epoch and its test."""
    final = history[-1]
    best = min(history, key=lambda r: r["val_loss"] if math.isfinite(r["val_loss"]) else math.inf)
    return {
        "status": status,
        **{k: final[k] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")},
        "test_loss": test["test_loss"],
        "test_accuracy": test["test_accuracy"],
        "best_val_loss": best["val_loss"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
    }


def objective(metrics: dict[str, Any]) -> float:
    """What a sweeper minimises: val_loss, or inf for a failed or diverged run."""
    return metrics["val_loss"] if metrics["status"] == "ok" else math.inf
