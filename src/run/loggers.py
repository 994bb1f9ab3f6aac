"""Experiment loggers: `logger=wandb` (offline unless asked otherwise), `csv` or `none`; each
kind's keys (LOGGER_SCHEMAS) with what they allow, as src/run/schema.py's groups."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig

from src.errors import ConfigError
from src.run.schema import one_of, positive_int, setting

if TYPE_CHECKING:
    from pytorch_lightning.loggers import Logger

WANDB_MODES = ("offline", "online", "disabled")
# wandb 0.31's own checks (wandb_settings.py), which it makes when each run starts.
WANDB_PROJECT_MAX = 128
WANDB_PROJECT_FORBIDDEN = "/\\#?%:"
WANDB_TAG_MAX = 64


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _project(key: str, project: Any) -> None:
    forbidden = sorted(set(WANDB_PROJECT_FORBIDDEN) & set(project if _is_name(project) else ""))
    if not _is_name(project) or len(project) > WANDB_PROJECT_MAX or forbidden:
        found = f"; it has {' '.join(forbidden)}" if forbidden else ""
        raise ConfigError(
            key,
            project,
            f"a name of 1 to {WANDB_PROJECT_MAX} characters without any of "
            f"{' '.join(WANDB_PROJECT_FORBIDDEN)}{found}",
        )


def _entity(key: str, entity: Any) -> None:
    # entity/project/run is a run's path: a / or : would be read as another part of it.
    if entity is not None and (not _is_name(entity) or "/" in entity or ":" in entity):
        raise ConfigError(key, entity, "null, or a user or team name without / or :")


def _name(key: str, value: Any) -> None:
    if not _is_name(value):
        raise ConfigError(key, value, "a name (a non-empty string)")


def _tags(key: str, tags: Any) -> None:
    if not isinstance(tags, ListConfig):
        raise ConfigError(key, tags, "a list of tags, e.g. [baseline,depth]")
    for tag in tags:
        if not 1 <= len(str(tag)) <= WANDB_TAG_MAX:
            raise ConfigError(key, tag, f"tags of 1 to {WANDB_TAG_MAX} characters")


# Not Hydra's schemas: conf/logger/*.yaml stay bare keys (`logger.kind` picks the schema).
@dataclass
class CsvConf:
    kind: Any = setting("csv")


@dataclass
class NoneConf:
    kind: Any = setting("none")


@dataclass
class WandbConf:
    """What wandb would refuse at every run's start is refused before."""

    kind: Any = setting("wandb")
    project: Any = setting("deep-vs-wide", _project)
    entity: Any = setting(None, _entity)
    mode: Any = setting("offline", one_of(WANDB_MODES))
    job_type: Any = setting("train", _name)
    tags: Any = setting([], _tags)
    watch: Any = setting(False)
    watch_log: Any = setting("all")
    watch_log_freq: Any = setting(10, positive_int)


LOGGER_SCHEMAS = {"wandb": WandbConf, "csv": CsvConf, "none": NoneConf}
KINDS = tuple(LOGGER_SCHEMAS)


def wandb_mode(cfg: DictConfig) -> str:
    """WANDB_MODE in the environment wins over `logger.mode`, as wandb users expect."""
    return os.environ.get("WANDB_MODE") or cfg.mode


def start_wandb_run(cfg: DictConfig, **init_args: Any):
    """A wandb run in the mode `cfg` asks for, without this codebase's per-run extras."""
    import wandb  # imported here so runs without wandb do not pay for it

    mode = wandb_mode(cfg)
    # The process-wide mode: offline, it also keeps wandb's telemetry threads from starting.
    wandb.setup(wandb.Settings(mode=mode))
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
    entity = cfg.get("entity")
    return wandb.init(project=cfg.project, entity=entity, mode=mode, settings=settings, **init_args)


@dataclass(frozen=True)
class WandbPlace:
    """Where a wandb run is written: `<root>/wandb/<mode>-run-<time>-<id>` (id None: random)."""

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
    """The Lightning logger for one run, writing into `output_dir` (a wandb run: where
    `wandb_place` says); concurrent: other runs stay open beside it (a stack's seeds)."""
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
    """A run's wandb id and folder (relative to `record_dir`), if it has a wandb run on disk."""
    from pytorch_lightning.loggers import WandbLogger

    if not isinstance(logger, WandbLogger):
        return {}
    run = logger.experiment
    folder = Path(run.dir).parent  # run.dir: the run's files/, inside its folder
    if not folder.is_dir():
        return {}
    return {"wandb_id": run.id, "wandb_dir": os.path.relpath(folder, record_dir)}


def close_logger(logger: Logger | None, failed: bool = False) -> None:
    """Finish the run's wandb run; failed: with exit code 1, so that wandb shows it failed."""
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        logger.experiment.finish(exit_code=1 if failed else None)
