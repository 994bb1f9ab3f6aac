"""Experiment loggers: `logger=wandb` (offline unless asked otherwise), `csv` or `none`."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


def _setup_wandb(mode: str):
    """wandb, with its process-wide mode set: an offline process also keeps wandb's own
    telemetry from starting the threads that would report to wandb.ai at exit."""
    import wandb  # imported here so runs without wandb do not pay for it

    wandb.setup(wandb.Settings(mode=mode))
    return wandb


def start_wandb_run(cfg: DictConfig, **init_args: Any):
    """A wandb run in the mode `cfg` asks for, without this codebase's per-run extras."""
    mode = wandb_mode(cfg)
    wandb = _setup_wandb(mode)
    settings = wandb.Settings(
        silent=True,
        console="off",  # the job's stdout already goes to Hydra's log file
        # Per-run costs that add up over a grid of small jobs: a system-metrics sampler,
        # a scan of the installed packages, git and code snapshots.
        x_disable_stats=True,
        x_save_requirements=False,
        disable_git=True,
        save_code=False,
    )
    return wandb.init(
        project=cfg.project,
        entity=cfg.get("entity"),
        mode=mode,
        settings=settings,
        **init_args,
    )


@dataclass(frozen=True)
class WandbPlace:
    """Where a wandb run is written: its folder `<root>/wandb/<mode>-run-<time>-<id>`; id
    None: a random one, wandb's."""

    root: Path
    id: str | None = None


def build_logger(
    cfg: DictConfig,
    output_dir: Path,
    group: str,
    name: str,
    config: dict[str, Any],
    concurrent: bool = False,
    wandb_place: WandbPlace | None = None,
) -> Logger | None:
    """The Lightning logger for one run, writing its files inside `output_dir` (a wandb run:
    where `wandb_place` says, by default in `output_dir/wandb/` under a random id).

    concurrent: other runs of this process stay open beside this one (a stack's seeds): its
    wandb run is then not wandb's global `wandb.run` (which `wandb.watch` needs).
    """
    from pytorch_lightning.loggers import CSVLogger, WandbLogger  # imported when training

    if cfg.kind == "csv":
        return CSVLogger(save_dir=output_dir, name="", version="")
    if cfg.kind == "wandb":
        place = wandb_place or WandbPlace(output_dir)
        run = start_wandb_run(
            cfg,
            id=place.id,
            group=group,
            name=name,
            job_type=cfg.job_type,
            tags=list(cfg.tags),
            dir=str(place.root),
            config=config,
            **({"reinit": "create_new"} if concurrent else {}),
        )
        return WandbLogger(experiment=run, save_dir=str(output_dir))
    return None


def wandb_link(logger: Logger | None, record_dir: Path) -> dict[str, str]:
    """What a run's record says of its wandb run: its id and its folder, relative to
    `record_dir`; nothing without a wandb run on disk (another logger, wandb disabled)."""
    from pytorch_lightning.loggers import WandbLogger

    if not isinstance(logger, WandbLogger):
        return {}
    run = logger.experiment
    folder = Path(run.dir).parent  # run.dir: the run's files/, inside its folder
    if not folder.is_dir():
        return {}
    return {"wandb_id": run.id, "wandb_dir": os.path.relpath(folder, record_dir)}


def close_logger(logger: Logger | None, failed: bool = False) -> None:
    """Finish the run's wandb run (a multirun's next job starts a run of its own); failed:
    with exit code 1, so that wandb shows it failed rather than finished."""
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        logger.experiment.finish(exit_code=1 if failed else None)
