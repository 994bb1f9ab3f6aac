"""Train one MLP on generated data.

    python -m src.train model.depth=3 model.width=10           # one run
    python -m src.train -m model.depth=0,1,2 'seed=range(6)'   # a sweep

`train(cfg)` is the task (tests call it directly); `main` wraps it for Hydra.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.config import (
    ConfigError,
    exit_on_config_error,
    require_choice,
    require_int,
    require_number,
)
from src.loggers import KINDS, WANDB_MODES, build_logger, close_logger
from src.runs import METRICS_FILE, register_resolvers, run_group, write_json_atomic
from src.sweep import clear_attempt, finished_metrics, progress_line
from src.workers import training_stack

log = logging.getLogger(__name__)
register_resolvers()

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def validate(cfg: DictConfig) -> None:
    """Refuse any value training cannot use, naming the key (raises ConfigError)."""
    # torch-backed modules, imported where used: a sweep's main process never needs torch.
    from src.generators import GENERATORS
    from src.nets import ACTIVATIONS, OPTIMIZERS

    require_int("seed", cfg.seed)
    m = cfg.model
    require_int("model.depth", m.depth, minimum=0)
    require_int("model.width", m.width, minimum=1)
    require_choice("model.activation", m.activation, ACTIVATIONS)
    require_number("model.lr", m.lr, positive=True)
    require_choice("model.optimizer", m.optimizer, OPTIMIZERS)
    d = cfg.data
    require_choice("data.name", d.name, GENERATORS)
    for key in ("n_train", "n_val", "n_test", "batch_size"):
        require_int(f"data.{key}", d[key], minimum=1)
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


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, evaluate on the test split, save weights and metrics.json; return the metrics."""
    validate(cfg)
    pl, GeneratedDataModule, MLPClassifier = training_stack()
    import torch

    from src.nets import count_parameters

    start = time.perf_counter()
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _quiet_lightning()
    torch.set_num_threads(cfg.trainer.num_threads)
    torch.manual_seed(cfg.seed)

    data = GeneratedDataModule(**cfg.data, shuffle_seed=cfg.seed)
    model = MLPClassifier(**cfg.model)
    n_params = count_parameters(model.net)
    group = _job_group()
    config = OmegaConf.to_container(cfg, resolve=True)
    progress_bar = cfg.trainer.progress_bar
    if progress_bar is None:
        progress_bar = HydraConfig.initialized() and not _is_multirun()
    logger = None
    try:
        logger = build_logger(cfg.logger, output_dir, group, f"{group}/seed={cfg.seed}", config)
        if logger is not None:
            logger.log_hyperparams({"n_params": n_params})
            if cfg.logger.get("watch"):
                # idx=0: wandb numbers the models watched in one process (graph_1..., in a
                # multirun's later jobs); the same histogram names in every job line them up.
                logger.experiment.watch(
                    model, log=cfg.logger.watch_log, log_freq=cfg.logger.watch_log_freq, idx=0
                )
        trainer = pl.Trainer(
            max_epochs=cfg.trainer.max_epochs,
            accelerator=cfg.trainer.accelerator,
            devices=cfg.trainer.devices,
            logger=logger or False,
            enable_progress_bar=progress_bar,
            enable_checkpointing=False,  # weights are saved once, at the end
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=output_dir,
        )
        trainer.fit(model, datamodule=data)
        test = trainer.test(model, datamodule=data, verbose=False)[0]
        torch.save(
            {"hparams": dict(model.hparams), "state_dict": model.net.state_dict()},
            output_dir / "model.pt",
        )
    finally:
        close_logger(logger)

    history = model.history
    final = history[-1]
    best = min(history, key=lambda r: r["val_loss"] if math.isfinite(r["val_loss"]) else math.inf)
    metrics = {
        "status": "diverged" if model.diverged else "ok",
        **{k: final[k] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")},
        "test_loss": test["test_loss"],
        "test_accuracy": test["test_accuracy"],
        "best_val_loss": best["val_loss"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "n_params": n_params,
        "seconds": time.perf_counter() - start,
        "history": history,
        "config": config,
    }
    write_json_atomic(output_dir / METRICS_FILE, metrics)
    return metrics


def _objective(metrics: dict[str, Any]) -> float:
    """What a sweeper minimises: val_loss, or inf for a failed or diverged run."""
    return metrics["val_loss"] if metrics["status"] == "ok" else math.inf


def _sweep_job(cfg: DictConfig) -> float:
    """One job of a multirun: skipped if an earlier attempt finished it, and never fatal to
    the sweep (a refused or crashed job is recorded as failed and the next one starts)."""
    job_dir = Path(cfg.output_dir)
    earlier = finished_metrics(job_dir)
    if earlier is not None:
        return _objective(earlier)
    clear_attempt(job_dir)
    try:
        metrics = train(cfg)
    except Exception as error:
        if not isinstance(error, ConfigError):  # a bug: keep its traceback in the job's log
            log.exception("job failed")
        metrics = {"status": "failed", "error": str(error)}
        job_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(job_dir / METRICS_FILE, metrics)
    hydra_cfg = HydraConfig.get()
    log.info(progress_line(Path(hydra_cfg.sweep.dir), list(hydra_cfg.overrides.task), metrics))
    return _objective(metrics)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns what a sweeper minimises (val_loss, inf for a failed run)."""
    if _is_multirun():
        return _sweep_job(cfg)
    return _objective(exit_on_config_error(train)(cfg))


if __name__ == "__main__":
    main()
