"""One training run, from a composed config to each seed's files: `train` and `train_stack`.

`train(cfg)` trains one seed; `train_stack(cfg, seeds, dirs)` trains the seeds of one
configuration as one stacked model and writes each seed's run (metrics.json, model.pt, its
logger's files) as a run of that seed alone would. `validate(cfg)` (from validation.py) refuses
first, before any training, what the run cannot use or this machine cannot run.
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
from src.run.validation import validate

log = logging.getLogger(__name__)


def _job_group() -> str:
    return run_group(HydraConfig.get().job.override_dirname if HydraConfig.initialized() else None)


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _set_up_torch(trainer: DictConfig) -> None:
    """Torch's threads for this job, and Lightning without its noise: start-up banners and
    advice meant for big data sets."""
    import torch

    torch.set_num_threads(trainer.num_threads)
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
    # Printed wherever SLURM's client is installed, since every fit looks for a SLURM
    # checkpoint to resume from; a sweep's job on SLURM runs inside submitit's srun anyway.
    warnings.filterwarnings("ignore", message="The `srun` command is available")


def _training_stack():
    """Lightning and the classes built on it, imported on first use: a wrong value is refused
    before this import (about 5 s), and a sweep's main process, which only launches jobs,
    never pays for it.

    The first import leaves millions of long-lived objects (torch._dynamo, sympy); freezing
    them keeps the garbage collector from walking them again, in every full collection and in
    the one at exit.
    """
    first_import = "pytorch_lightning" not in sys.modules
    import pytorch_lightning as pl

    from src.run.data import GeneratedDataModule
    from src.run.model import MLPClassifier

    if first_import:
        gc.freeze()
    return pl, GeneratedDataModule, MLPClassifier


def train(cfg: DictConfig) -> dict[str, Any]:
    """One run of `cfg.seed`: train, test, save weights and metrics.json; return the metrics."""
    return train_stack(cfg, [cfg.seed], {cfg.seed: Path(cfg.output_dir)})[cfg.seed]


def member_config(config: dict[str, Any], seed: int, output_dir: Path) -> dict[str, Any]:
    """The resolved config of a single run of `seed`, as if trained alone into `output_dir`."""
    return {**config, "seed": seed, "seeds": None, "output_dir": str(output_dir)}


def train_stack(
    cfg: DictConfig,
    seeds: list[int],
    out_dirs: dict[int, Path],
    group: str | None = None,
    callbacks: list[Any] | None = None,
    wandb_places: dict[int, WandbPlace] | None = None,
) -> dict[int, dict[str, Any]]:
    """Train the seeds together as one stacked model; for each seed in `out_dirs`, write its
    run (metrics.json, model.pt, logger files) into its folder, and return its metrics.

    Seeds left out of `out_dirs` are trained but not written (a resumed stack whose other
    seeds finished before). A seed whose files cannot be written is returned as failed; a full
    disk raises its OSError, naming the file.
    group: the runs' logger group (default: the configuration without the seed);
    callbacks: Lightning callbacks for the fit (a search's pruning);
    wandb_places: where each seed's wandb run goes (default: its folder, a random id).
    """
    validate(cfg)
    pl, GeneratedDataModule, MLPClassifier = _training_stack()
    start = time.perf_counter()
    _set_up_torch(cfg.trainer)
    data = GeneratedDataModule.from_config(cfg.data, seeds)
    model = MLPClassifier.from_config(cfg.model, seeds)
    written = _written_runs(cfg, seeds, out_dirs, _n_params(model), wandb_places or {})
    with _member_loggers(cfg.logger, written, group or _job_group(), model) as loggers:
        links = {run.seed: wandb_link(loggers.get(run.member), run.out) for run in written}
        trainer = _trainer(pl, cfg.trainer, loggers, out_dirs, callbacks)
        trainer.fit(model, datamodule=data)
        trainer.test(model, datamodule=data, verbose=False)
        dead = _dead_units(
            model, data
        )  # in metrics.json; the wandb run's last row stays the test's
    seconds = time.perf_counter() - start
    return {
        run.seed: _write_run(run, model, seconds, links[run.seed], dead[run.member])
        for run in written
    }


def _dead_units(model: Any, data: Any) -> list[dict[str, Any]]:
    """Each member's share of hidden units that never activate on the validation set (a relu
    whose output is 0 on every sample), over all its hidden layers and per layer; None at
    depth 0."""
    from src.run.nets import dead_units

    x = data.splits["val"].tensors[0].to(next(model.parameters()).device)
    return [
        {
            "dead_units": sum(layers) / len(layers) if layers else None,
            "dead_units_by_layer": layers,
        }
        for layers in dead_units(model.net, x)
    ]


@dataclass(frozen=True)
class _Run:
    """One seed of a stack that is written: its member of the stack, its folder, its config."""

    seed: int
    member: int  # its index in the stack's seeds
    out: Path
    config: dict[str, Any]  # its resolved config, as a single run's
    stacked_with: list[int]
    n_params: int  # of one member
    wandb_place: WandbPlace


def _written_runs(
    cfg: DictConfig,
    seeds: list[int],
    out_dirs: dict[int, Path],
    n_params: int,
    wandb_places: dict[int, WandbPlace],
) -> list[_Run]:
    """The seeds to write (those of `out_dirs`), in its order."""
    config = OmegaConf.to_container(cfg, resolve=True)
    return [
        _Run(
            seed,
            seeds.index(seed),
            out,
            member_config(config, seed, out),
            seeds,
            n_params,
            wandb_places.get(seed, WandbPlace(out)),
        )
        for seed, out in out_dirs.items()
    ]


def _n_params(model: Any) -> int:
    """The parameters of one member of the stack."""
    from src.run.nets import count_parameters

    return count_parameters(model.net) // len(model.seeds)


@contextmanager
def _member_loggers(
    cfg: DictConfig, runs: list[_Run], group: str, model: Any
) -> Iterator[dict[int, Any]]:
    """Each written seed's logger (none for logger=none), by its member of the stack, handed
    to the model (which logs each member's rows to its own run); all closed at the end, even
    if one of them fails to start or the fit fails (then as failed)."""
    loggers, failed = {}, False
    try:
        for run in runs:
            run.out.mkdir(parents=True, exist_ok=True)
            name, concurrent = f"{group}/seed={run.seed}", len(runs) > 1
            logger = build_logger(
                cfg, run.out, group, name, run.config, concurrent, run.wandb_place
            )
            if logger is not None:
                logger.log_hyperparams({"n_params": run.n_params})
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
    """The Lightning Trainer of the fit and the test: no checkpoints (the weights are saved
    once, at the end), no sanity validation (it would not be in the history anyway)."""
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
        plugins=[_cluster_environment()],
    )


def _cluster_environment() -> Any:
    """Lightning's view of where it runs, given rather than detected: detection prints an
    `srun` hint wherever SLURM's client is installed, and Lightning's own SLURM handling would
    requeue a batch job at its time limit, which the sweep's launcher owns (a Dask worker
    retires before it; src/sweep/cluster.py)."""
    from lightning_fabric.plugins.environments import LightningEnvironment

    return LightningEnvironment()


def _write_run(
    run: _Run, model: Any, seconds: float, wandb: dict[str, str], dead: dict[str, Any]
) -> dict[str, Any]:
    """Write one seed's model.pt and metrics.json, and return its metrics; a seed whose files
    cannot be written is failed (the stack's other seeds are kept), a full disk is raised.
    wandb: its wandb run's id and folder (wandb_link), if it has one; dead: its dead units
    (_dead_units)."""
    k = run.member
    metrics = {
        **run_metrics(model.history[k], model.test_metrics[k], model.status[k]),
        "n_params": run.n_params,
        "seconds": seconds,
        **dead,
        "stacked_with": run.stacked_with,
        **wandb,
        "history": model.history[k],
        "config": run.config,
    }
    hparams = {key: v for key, v in model.hparams.items() if key != "seeds"}
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
    """torch.save to `path`; a failure to write it raised as the OSError it is (torch raises a
    RuntimeError that has lost the errno: "file write failed", "cannot be opened")."""
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
