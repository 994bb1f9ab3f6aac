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
# wandb 0.31's own checks (wandb/sdk/wandb_settings.py: validate_project, validate_run_tags):
# it refuses these when the run starts, that is in every job of a sweep.
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


# Not Hydra's schemas as well: conf/logger/*.yaml stay their kind's bare keys (`logger.kind`
# picks the schema), with no defaults list.
@dataclass
class CsvConf:
    kind: Any = setting("csv")


@dataclass
class NoneConf:
    kind: Any = setting("none")


@dataclass
class WandbConf:
    """What wandb would refuse at every run's start is refused before: its mode, a project name
    too long or with a character it forbids, an entity or job type that is no name, a tag that
    is empty or too long."""

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
