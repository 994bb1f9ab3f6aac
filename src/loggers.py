"""Experiment loggers: `logger=wandb` (offline unless asked otherwise), `csv` or `none`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

if TYPE_CHECKING:
    from pytorch_lightning.loggers import Logger

KINDS = ("wandb", "csv", "none")
WANDB_MODES = ("offline", "online", "disabled")


def wandb_mode(cfg: DictConfig) -> str:
    """WANDB_MODE in the environment wins over `logger.mode`, as wandb users expect."""
    return os.environ.get("WANDB_MODE") or cfg.mode


def build_logger(
    cfg: DictConfig, output_dir: Path, group: str, name: str, config: dict[str, Any]
) -> Logger | None:
    """The Lightning logger for one job, writing its files inside `output_dir`."""
    from pytorch_lightning.loggers import CSVLogger, WandbLogger  # imported when training

    if cfg.kind == "csv":
        return CSVLogger(save_dir=output_dir, name="", version="")
    if cfg.kind == "wandb":
        import wandb  # imported here so runs without wandb do not pay for it

        run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=group,
            name=name,
            job_type=cfg.job_type,
            tags=list(cfg.tags),
            mode=wandb_mode(cfg),
            dir=str(output_dir),
            config=config,
            settings=wandb.Settings(
                silent=True,
                console="off",  # the job's stdout already goes to Hydra's log file
                # Per-run costs that add up over a grid of small jobs: a system-metrics
                # sampler, a scan of the installed packages, git and code snapshots.
                x_disable_stats=True,
                x_save_requirements=False,
                disable_git=True,
                save_code=False,
            ),
        )
        return WandbLogger(experiment=run, save_dir=str(output_dir))
    return None


def close_logger(logger: Logger | None) -> None:
    """Finish the wandb run, so the next job of a multirun starts a run of its own."""
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        import wandb

        wandb.finish()
