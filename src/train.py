"""Train MLPs on generated data: one run, or the seeds of one configuration as one stack.

    python -m src.train model.depth=3 model.width=10           # one run
    python -m src.train 'seeds=[0,1,2]'                        # three seeds, one stacked model
    python -m src.train -m model.depth=0,1,2 'seed=range(6)'   # a sweep: a job per depth

`train(cfg)` is one run and `train_stack(cfg, seeds, dirs)` a stack (tests call them
directly); `main` wraps them for Hydra.
"""

from __future__ import annotations

import gc
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config import (
    ConfigError,
    exit_on_config_error,
    require_choice,
    require_int,
    require_number,
)
from src.loggers import KINDS, WANDB_MODES, build_logger, close_logger
from src.runs import METRICS_FILE, member_dir, register_resolvers, run_group, write_json_atomic
from src.sweep import (
    clear_attempt,
    close_member_log,
    finished_metrics,
    member_log,
    member_overrides,
    progress_line,
    write_member_record,
)

log = logging.getLogger(__name__)
register_resolvers()

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def validate(cfg: DictConfig) -> None:
    """Refuse any value training cannot use, naming the key (raises ConfigError)."""
    # torch-backed modules, imported where used: a sweep's main process never needs torch.
    from src.generators import GENERATORS
    from src.nets import ACTIVATIONS, INITS, NORMS, OPTIMIZERS

    require_int("seed", cfg.seed)
    seeds = cfg.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, ListConfig) or not seeds or len(set(seeds)) < len(seeds):
            raise ConfigError("seeds", seeds, "null, or a list of distinct integers")
        for seed in seeds:
            require_int("seeds", seed)
        if len(seeds) > 1 and cfg.logger.get("watch"):
            raise ConfigError(
                "logger.watch",
                True,
                "false when seeds are stacked (its histograms would mix the seeds); "
                "add hydra.sweeper.stack_seeds=false",
            )
    m = cfg.model
    require_int("model.depth", m.depth, minimum=0)
    require_int("model.width", m.width, minimum=1)
    require_choice("model.activation", m.activation, ACTIVATIONS)
    require_number("model.lr", m.lr, positive=True)
    require_choice("model.optimizer", m.optimizer, OPTIMIZERS)
    if not isinstance(m.residual, bool):
        raise ConfigError("model.residual", m.residual, "a boolean: true or false")
    require_choice("model.norm", m.norm, NORMS)
    require_choice("model.init", m.init, INITS)
    d = cfg.data
    require_choice("data.name", d.name, GENERATORS)
    for key in ("n_train", "n_val", "n_test", "batch_size"):
        require_int(f"data.{key}", d[key], minimum=1)
    if m.norm == "batch" and m.depth > 0 and (d.n_train % d.batch_size or d.batch_size) == 1:
        raise ConfigError(  # BatchNorm cannot normalize a batch of one sample
            "data.batch_size",
            d.batch_size,
            f"a size that leaves no training batch of 1 sample (data.n_train={d.n_train}) "
            "with model.norm=batch",
        )
    require_number("data.noise", d.noise, minimum=0)
    require_int("data.seed", d.seed)
    t = cfg.trainer
    require_int("trainer.max_epochs", t.max_epochs, minimum=1)
    require_int("trainer.num_threads", t.num_threads, minimum=1)
    require_int("trainer.devices", t.devices, minimum=1)
    require_choice("trainer.accelerator", t.accelerator, ACCELERATORS)
    if t.progress_bar not in (None, True, False):
        raise ConfigError("trainer.progress_bar", t.progress_bar, "true, false or null")
    require_choice("logger.kind", cfg.logger.kind, KINDS)
    if cfg.logger.kind == "wandb":
        require_choice("logger.mode", cfg.logger.mode, WANDB_MODES)
        require_int("logger.watch_log_freq", cfg.logger.watch_log_freq, minimum=1)


def _job_group() -> str:
    return run_group(HydraConfig.get().job.override_dirname if HydraConfig.initialized() else None)


def _is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _quiet_lightning() -> None:
    # Lightning's start-up banners and its advice for big data sets are noise here.
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")


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

    from src.data import GeneratedDataModule
    from src.model import MLPClassifier

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
    cfg: DictConfig, seeds: list[int], out_dirs: dict[int, Path]
) -> dict[int, dict[str, Any]]:
    """Train the seeds together as one stacked model; for each seed in `out_dirs`, write its
    run (metrics.json, model.pt, logger files) into its folder, and return its metrics.

    Seeds left out of `out_dirs` are trained but not written (a resumed stack whose other
    seeds finished before). A seed whose files cannot be written is returned as failed.
    """
    validate(cfg)
    pl, GeneratedDataModule, MLPClassifier = _training_stack()
    import torch

    from src.nets import count_parameters

    start = time.perf_counter()
    _quiet_lightning()
    torch.set_num_threads(cfg.trainer.num_threads)
    data = GeneratedDataModule(**cfg.data, shuffle_seeds=seeds)
    model = MLPClassifier(**cfg.model, seeds=seeds)
    n_params = count_parameters(model.net) // len(seeds)
    group = _job_group()
    config = OmegaConf.to_container(cfg, resolve=True)
    configs = {seed: member_config(config, seed, out) for seed, out in out_dirs.items()}
    progress_bar = cfg.trainer.progress_bar
    if progress_bar is None:
        progress_bar = HydraConfig.initialized() and not _is_multirun()
    loggers = {}
    try:
        for seed, out in out_dirs.items():
            out.mkdir(parents=True, exist_ok=True)
            name, concurrent = f"{group}/seed={seed}", len(out_dirs) > 1
            logger = build_logger(cfg.logger, out, group, name, configs[seed], concurrent)
            if logger is not None:
                logger.log_hyperparams({"n_params": n_params})
                loggers[seeds.index(seed)] = logger
        if cfg.logger.get("watch") and loggers:  # one seed: validate() refuses watching a stack
            # idx=0: wandb numbers the models watched in one process (graph_1..., in a
            # multirun's later jobs); the same histogram names in every job line them up.
            loggers[0].experiment.watch(
                model, log=cfg.logger.watch_log, log_freq=cfg.logger.watch_log_freq, idx=0
            )
        model.member_loggers = loggers
        trainer = pl.Trainer(
            max_epochs=cfg.trainer.max_epochs,
            accelerator=cfg.trainer.accelerator,
            devices=cfg.trainer.devices,
            logger=list(loggers.values()) or False,
            enable_progress_bar=progress_bar,
            enable_checkpointing=False,  # weights are saved once, at the end
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=next(iter(out_dirs.values()), None),
        )
        trainer.fit(model, datamodule=data)
        trainer.test(model, datamodule=data, verbose=False)
    finally:
        for logger in loggers.values():
            close_logger(logger)

    seconds = time.perf_counter() - start
    results = {}
    for seed, out in out_dirs.items():
        k = seeds.index(seed)
        metrics = {
            **run_metrics(model.history[k], model.test_metrics[k], model.status[k]),
            "n_params": n_params,
            "seconds": seconds,
            "stacked_with": seeds,
            "history": model.history[k],
            "config": configs[seed],
        }
        hparams = {key: v for key, v in model.hparams.items() if key != "seeds"}
        state = {name: t.cpu() for name, t in model.net.member_state(k).items()}
        path = out / "model.pt"
        try:
            torch.save({"hparams": hparams, "state_dict": state}, path)
            path = out / METRICS_FILE
            write_json_atomic(path, metrics)
        except Exception as error:
            log.exception(f"seed={seed}: {path} could not be written")
            metrics = {
                "status": "failed",
                "error": f"writing {path}: {type(error).__name__}: {error}",
            }
        results[seed] = metrics
    return results


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


def _objective(metrics: dict[str, Any]) -> float:
    """What a sweeper minimises: val_loss, or inf for a failed or diverged run."""
    return metrics["val_loss"] if metrics["status"] == "ok" else math.inf


def _failed(error: Exception) -> dict[str, Any]:
    if not isinstance(error, ConfigError):  # a bug: keep its traceback in the job's log
        log.exception("job failed")
    return {"status": "failed", "error": str(error)}


def _sweep_job(cfg: DictConfig) -> float | list[float]:
    """One job of a multirun: one seed, or a stack of seeds (`seeds=[...]`) written one folder
    each. A seed an earlier attempt finished is not written again (a stack is retrained whole,
    so that its numbers are those of an uninterrupted sweep), and no job is fatal to the
    sweep: a refused or crashed one is recorded as failed and the next one starts."""
    hydra_cfg = HydraConfig.get()
    stacked = cfg.get("seeds") is not None
    seeds = list(cfg.seeds) if stacked else [cfg.seed]
    out = Path(cfg.output_dir)
    dirs = {s: member_dir(out, s) for s in seeds} if stacked else {cfg.seed: out}
    results = {s: m for s, m in ((s, finished_metrics(d)) for s, d in dirs.items()) if m}
    todo = {s: d for s, d in dirs.items() if s not in results}
    if todo:
        logs = {}
        for seed, job_dir in todo.items():
            clear_attempt(job_dir)
            logs[seed] = log
            if stacked:
                overrides = member_overrides(list(hydra_cfg.overrides.task), seed)
                write_member_record(cfg, seed, job_dir, overrides)
                logs[seed] = member_log(job_dir, seed)
        try:
            results.update(train_stack(cfg, seeds, todo))
        except Exception as error:
            failed = _failed(error)
            for job_dir in todo.values():
                job_dir.mkdir(parents=True, exist_ok=True)
                write_json_atomic(job_dir / METRICS_FILE, failed)
            results.update(dict.fromkeys(todo, failed))
        sweep_dir = Path(hydra_cfg.sweep.dir)
        for seed in todo:
            overrides = member_overrides(list(hydra_cfg.overrides.task), seed)
            logs[seed].info(progress_line(sweep_dir, overrides, results[seed]))
            if stacked:
                close_member_log(logs[seed])
    objectives = [_objective(results[s]) for s in seeds]
    return objectives if stacked else objectives[0]


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | list[float]:
    """Hydra entry point; returns what a sweeper minimises (val_loss, inf for a failed run),
    one value per seed for a stack."""
    if _is_multirun():
        return _sweep_job(cfg)
    if cfg.get("seeds") is not None:
        dirs = {s: member_dir(Path(cfg.output_dir), s) for s in cfg.seeds}
        results = exit_on_config_error(train_stack)(cfg, list(cfg.seeds), dirs)
        return [_objective(m) for m in results.values()]
    return _objective(exit_on_config_error(train)(cfg))


if __name__ == "__main__":
    main()
