"""Where runs write their results and how they are named.

Registers two OmegaConf resolvers used in conf/train.yaml:
- `unique_dir`: claims a fresh output folder, so two sweeps started in the same second
  get `21-30-05` and `21-30-05-2` instead of sharing one;
- `run_group`: the configuration without the seed (Hydra's override_dirname), used as the
  job's folder and as its wandb group, so repetitions sit and average together;
- `job_subdir`, `hydra_subdir`: where a job runs and keeps Hydra's record of it. A run of one
  seed: `<group>/seed=<n>/` with `.hydra/`. A stacked job (`seeds=[...]`): `<group>/` with
  `.stack/`, and one `seed=<n>/` folder per seed, laid out as a single run's.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

METRICS_FILE = "metrics.json"
DEFAULT_GROUP = "default"
STACK_SUBDIR = ".stack"


def unique_dir(path: str) -> str:
    """Create `path` (or `path-2`, `path-3`, ...) and return the one this process created."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 1
    while True:
        try:
            os.mkdir(candidate)  # atomic: of two processes racing for a name, one wins
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{path}-{n}"


def run_group(override_dirname: str | None) -> str:
    """The name shared by the repetitions of one configuration."""
    return override_dirname or DEFAULT_GROUP


def job_subdir(override_dirname: str | None, seed: int, seeds: list[int] | None) -> str:
    group = run_group(override_dirname)
    return group if seeds is not None else f"{group}/seed={seed}"


def hydra_subdir(seeds: list[int] | None) -> str:
    return ".hydra" if seeds is None else STACK_SUBDIR


def member_dir(output_dir: Path, seed: int) -> Path:
    """Where a stacked job writes the run of one of its seeds."""
    return Path(output_dir) / f"seed={seed}"


def register_resolvers() -> None:
    # use_cache: resolved once per config and copied by Hydra into every job's config.
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("run_group"):
        OmegaConf.register_new_resolver("run_group", run_group)
    if not OmegaConf.has_resolver("job_subdir"):
        OmegaConf.register_new_resolver("job_subdir", job_subdir)
    if not OmegaConf.has_resolver("hydra_subdir"):
        OmegaConf.register_new_resolver("hydra_subdir", hydra_subdir)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write `data` to `path` so that a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=True))
    os.replace(tmp, path)


# What a finished job's record must hold: the final metrics (numbers; finite when ok), its
# per-epoch history and its resolved config's data section (the report redraws the data).
METRIC_KEYS = (  # a finished run's final metrics, also results.csv's columns
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "best_val_loss",
    "best_epoch",
    "epochs",
    "n_params",
    "seconds",
)
FINITE_WHEN_OK = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "n_params")
EPOCH_NUMBERS = ("epoch", "train_loss", "val_loss")
DATA_KEYS = ("name", "n_train", "n_val", "n_test", "noise", "seed")
STATUSES = ("ok", "diverged", "pruned", "failed")  # pruned: a search stopped it early


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def record_problem(record: Any) -> str | None:
    """What is wrong with a job's parsed metrics.json, or None if the report can use it."""
    if not isinstance(record, dict):
        return f"holds a JSON {type(record).__name__}, not an object"
    status = record.get("status")
    if status is None:
        return "has no status"
    if status not in STATUSES:
        return f"has status {status!r}, not one of {', '.join(STATUSES)}"
    if status == "failed":
        return None
    for key in METRIC_KEYS:
        value = record.get(key)
        if key not in record:
            return f"is {status} but has no {key}"
        if not _is_number(value):
            return f"has {key}={value!r}, not a number"
        if status == "ok" and key in FINITE_WHEN_OK and not math.isfinite(value):
            return f"is ok but has {key}={value!r}"
    history = record.get("history")
    if not isinstance(history, list) or not history:
        return f"has history={_short(history)}, not a list of epochs"
    for i, epoch in enumerate(history):
        if not isinstance(epoch, dict) or not all(_is_number(epoch.get(k)) for k in EPOCH_NUMBERS):
            return f"has history[{i}]={_short(epoch)}, not an epoch with {', '.join(EPOCH_NUMBERS)}"
    config = record.get("config")
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or any(k not in data for k in DATA_KEYS):
        return "has no config.data with " + ", ".join(DATA_KEYS)
    return None


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_metrics(job_dir: Path) -> dict[str, Any] | None:
    """A job's metrics.json, checked: None when the job has not written it (yet), else its
    record, or, when the file is malformed in any way, a failed record whose error says how.

    The one place that reads a job's record for the report, the summary, the search views
    and resume (where a malformed record means an unfinished job, trained again).
    """
    path = Path(job_dir) / METRICS_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        problem = f"cannot be read ({type(error).__name__}: {error})"
    except json.JSONDecodeError as error:
        problem = f"is not valid JSON, cut short? ({error})"
    else:
        problem = record_problem(record)
        if problem is None:
            return record
    return {"status": "failed", "error": f"malformed {METRICS_FILE}: it {problem}"}


def sweep_files(sweep_dir: Path, name: str = METRICS_FILE) -> Iterator[Path]:
    """Every file called `name` in the sweep's job folders. Faster than rglob: it skips the
    wandb and report folders, the bulk of a finished sweep's files (each job's progress line
    counts the finished jobs, so this runs once per job)."""
    for folder, subfolders, files in os.walk(sweep_dir):
        subfolders[:] = [f for f in subfolders if f not in ("wandb", "report")]
        if name in files:
            yield Path(folder) / name
