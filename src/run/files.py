"""Where runs write their results, how they are named, and how their records are read.

conf/train.yaml's resolvers: `unique_dir` (a fresh output folder: `21-30-05`, `21-30-05-2`),
`run_group` (the configuration without the seed: the job's folder and wandb group),
`job_subdir` and `hydra_subdir`: a run of one seed is `<group>/seed=<n>/` with `.hydra/`, a
stacked job `<group>/` with `.stack/` and a `seed=<n>/` folder per seed, as a single run's.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.run.schema import DATA_KEYS

METRICS_FILE = "metrics.json"
DEFAULT_GROUP = "default"
STACK_SUBDIR = ".stack"


# The folders unique_dir created in this process, each with the parents it had to make for it.
_CREATED: dict[Path, list[Path]] = {}
# What Hydra writes into a run's folder before the run starts: its record and the log file.
HYDRA_FILES = frozenset({".hydra", STACK_SUBDIR, "train.log"})


def unique_dir(path: str) -> str:
    """Create `path` (or `path-2`, `path-3`, ...) and return the one this process created; one
    that cannot be made is returned unmade (src.folders.OutputFolderCheck refuses it)."""
    parent = Path(path).parent
    missing = [p for p in (parent, *parent.parents) if not p.exists()]
    candidate, n = path, 1
    try:
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                os.mkdir(candidate)  # atomic: of two processes racing for a name, one wins
                _CREATED[Path(candidate).absolute()] = [p.absolute() for p in missing]
                return candidate
            except FileExistsError:
                n += 1
                candidate = f"{path}-{n}"
    except OSError:
        return path


def remove_unused_run_dir(output_dir: Path) -> bool:
    """Remove a refused run's folder, and the parents made for it if left empty, if unique_dir
    created it in this process and it holds only Hydra's files; whether it was removed."""
    folder = Path(output_dir).absolute()
    if folder not in _CREATED or not set(os.listdir(folder)) <= HYDRA_FILES:
        return False
    shutil.rmtree(folder)
    for parent in _CREATED.pop(folder):  # innermost first; one that is not empty stops it
        try:
            parent.rmdir()
        except OSError:
            break
    return True


def write_error(path: Path, error: BaseException) -> str:
    """One line for a file or folder that could not be written: its path and why."""
    if isinstance(error, OSError) and error.strerror:
        return f"cannot write {path}: {error.strerror}"
    return f"cannot write {path}: {type(error).__name__}: {error}"


# A disk with no room left, or a quota used up (a cluster's home and scratch folders).
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def no_space(error: BaseException | None) -> OSError | None:
    """The OSError of a full disk (or quota) that `error` is or was raised from, else None."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
            return error
        error = error.__cause__ or error.__context__
    return None


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
    for resolver in (unique_dir, run_group, job_subdir, hydra_subdir):
        if not OmegaConf.has_resolver(resolver.__name__):
            # unique_dir cached: resolved once per config, copied by Hydra into every job's
            cached = resolver is unique_dir
            OmegaConf.register_new_resolver(resolver.__name__, resolver, use_cache=cached)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write `data` to `path` as strict JSON (a non-finite float as null: NaN is not JSON), so
    that a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    text = json.dumps(_finite_or_null(data), indent=2, allow_nan=False)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no partial file behind
        raise


def _finite_or_null(value: Any) -> Any:
    """`value` with every non-finite float, at any depth, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


# A finished job's record holds its final metrics (also results.csv's columns), its per-epoch
# history and its config's data section (the report redraws the data).
LOSSES = tuple(f"{split}_{m}" for split in ("train", "val", "test") for m in ("loss", "accuracy"))
METRIC_KEYS = (*LOSSES, "best_val_loss", "best_epoch", "epochs", "n_params", "seconds")
# The only numbers that may be non-finite (null in the file, NaN once read): a diverged run's.
NON_FINITE_WHEN_DIVERGED = METRIC_KEYS[:7]
EPOCH_NUMBERS = ("epoch", "train_loss", "val_loss")
STATUSES = ("ok", "diverged", "pruned", "failed")  # pruned: a search stopped it early


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_problem(value: Any, may_be_non_finite: bool) -> str | None:
    """Why `value` is not a number a record may hold, or None: not a number, an int too large
    for a float (json reads 10**400 as one), or not finite (null stands for it) where it must."""
    if value is None and may_be_non_finite:
        return None
    if not _is_number(value):
        return "not a number"
    try:
        finite = math.isfinite(value)
    except OverflowError:
        return "a number too large for a float"
    return None if finite or may_be_non_finite else "not a finite number"


def record_problem(record: Any) -> str | None:
    """What is wrong with a job's parsed metrics.json, or None if the report can use it."""
    if not isinstance(record, dict):
        return f"holds a JSON {type(record).__name__}, not an object"
    status = record.get("status")
    if status is None:
        return "has no status"
    if status not in STATUSES:
        return f"has status {_short(status)}, not one of {', '.join(STATUSES)}"
    if status == "failed":
        return None
    diverged = status == "diverged"
    for key in METRIC_KEYS:
        if key not in record:
            return f"is {status} but has no {key}"
        value = record[key]
        problem = _number_problem(value, diverged and key in NON_FINITE_WHEN_DIVERGED)
        if problem == "not a finite number":
            return f"is {status} but has {key}={_short(value)}"
        if problem:
            return f"has {key}={_short(value)}, {problem}"
    history = record.get("history")
    if not isinstance(history, list) or not history:
        return f"has history={_short(history)}, not a list of epochs"
    for i, epoch in enumerate(history):
        not_an_epoch = f"has history[{i}]={{}}, not an epoch with {', '.join(EPOCH_NUMBERS)}"
        if not isinstance(epoch, dict) or not all(k in epoch for k in EPOCH_NUMBERS):
            return not_an_epoch.format(_short(epoch))
        # Only a diverged run's last epoch (where it stopped) may hold a non-finite value.
        last_of_diverged = diverged and i == len(history) - 1
        for key, value in epoch.items():
            problem = _number_problem(value, last_of_diverged and key != "epoch")
            if problem == "not a number" and key in EPOCH_NUMBERS:
                return not_an_epoch.format(_short(epoch))
            if problem:
                return f"has history[{i}].{key}={_short(value)}, {problem}"
    config = record.get("config")
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or any(k not in data for k in DATA_KEYS):
        return "has no config.data with " + ", ".join(DATA_KEYS)
    return None


def _short(value: Any, limit: int = 40) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of over 4,300 digits; a deep nesting
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _nan_for_null(record: dict[str, Any]) -> dict[str, Any]:
    """A checked record with each null number (a diverged run's non-finite value) as NaN."""
    if record["status"] != "diverged":
        return record
    nan = math.nan
    record.update({k: nan for k in NON_FINITE_WHEN_DIVERGED if record[k] is None})
    last = record["history"][-1]
    last.update({k: nan for k, v in last.items() if v is None})
    return record


class _NotAFile(OSError):
    """metrics.json is a FIFO, a folder, a device...: reading it could block or fail."""


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _read_regular_file(path: Path) -> str:
    """The text of `path` if it is a regular file; never blocks (a FIFO nobody writes)."""
    os.stat(path)  # FileNotFoundError before anything is opened
    # O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer;
    # fstat then says what was opened (no race with a file swapped in after a stat).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotAFile(f"it is {_KINDS.get(stat.S_IFMT(mode), 'no regular file')}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read()
    finally:
        os.close(fd)
    return data.decode("utf-8")


def read_metrics(job_dir: Path) -> dict[str, Any] | None:
    """A job's metrics.json, checked (the one reader of a job's record): None when not written
    (yet), a failed record saying how when malformed, else the record, its nulls read as NaN."""
    path = Path(job_dir) / METRICS_FILE
    try:
        text = _read_regular_file(path)
    except FileNotFoundError:
        return None
    except _NotAFile as error:
        problem = f"is not a regular file ({error})"
    except (OSError, UnicodeDecodeError) as error:
        problem = f"cannot be read ({type(error).__name__}: {error})"
    else:
        problem = None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            problem = f"is not valid JSON, cut short? ({error})"
        except ValueError as error:  # an integer of over 4,300 digits
            problem = f"cannot be parsed ({error})"
        except RecursionError:
            problem = "is nested too deeply to be parsed"
        if problem is None:
            problem = record_problem(record)
            if problem is None:
                return _nan_for_null(record)
    return {"status": "failed", "error": f"malformed {METRICS_FILE}: it {problem}"}


def sweep_files(sweep_dir: Path, name: str = METRICS_FILE) -> Iterator[Path]:
    """Every file called `name` in the sweep's job folders; faster than rglob, it skips the
    wandb, report and record index (src/sweep/progress.py) folders."""
    for folder, subfolders, files in os.walk(sweep_dir):
        subfolders[:] = [f for f in subfolders if f not in ("wandb", "report", ".records")]
        if name in files:
            yield Path(folder) / name
