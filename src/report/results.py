"""Aggregate a multirun: one row per job folder, written to `<sweep>/results.csv`.

A job folder holds `.hydra/overrides.yaml` or a metrics.json; its row: a column per override
key, its status (ok, diverged, failed, or missing: interrupted or running), its metrics, its
folder and wandb run, and a failed job's reason. A folder whose overrides are unknown is a
failed row without override columns: counted, never placed on the grid (`placed`).
"""

from __future__ import annotations

import csv
import functools
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from src.run.files import METRIC_KEYS, METRICS_FILE, read_metrics, sweep_files
from src.run.schema import SEED_KEY

RESULTS_FILE = "results.csv"
REPORT_DIR = "report"  # the report's folder in the sweep's
# every column not an override
RESULT_KEYS = ("status", *METRIC_KEYS, "job_dir", "wandb_id", "wandb_dir", "error")
# libyaml's loader where PyYAML has it: a large sweep's overrides files read 10x faster
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SweepError(ValueError):
    """A folder that cannot be aggregated (not a sweep, no finished jobs)."""


@functools.lru_cache(maxsize=65536)  # a grid repeats its values across jobs
def parse_value(text: str) -> Any:
    """An override's value as Hydra reads it: 2 -> int, 0.01 and 1e-3 -> float, else str."""
    try:
        value = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-3 as a string; Hydra reads a float
        except ValueError:
            return value
    return value if isinstance(value, (int, float, bool)) or value is None else text


def parse_override(override: str) -> tuple[str, Any]:
    """'model.depth=2' -> ('model.depth', 2); '+x=1' and '++x=1' -> ('x', 1)."""
    key, _, text = override.partition("=")
    return key.lstrip("+~"), parse_value(text)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep (not the sweep root itself); SweepError if it is no sweep."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"{sweep_dir} is not a folder")
    found = sorted(
        {
            p.parent.parent
            for p in sweep_files(sweep_dir, "overrides.yaml")
            if p.parent.name == ".hydra" and p.parent.parent != sweep_dir
        }
        | {p.parent for p in sweep_files(sweep_dir, METRICS_FILE) if p.parent != sweep_dir}
    )
    is_sweep = (sweep_dir / "multirun.yaml").exists()
    inner = sorted(
        p.parent for p in sweep_files(sweep_dir, "multirun.yaml") if p.parent != sweep_dir
    )
    if inner and not is_sweep:
        raise SweepError(
            f"{sweep_dir} holds {len(inner)} sweeps, not one: pass one of them, e.g. {inner[-1]}"
        )
    if not found and not is_sweep:
        raise SweepError(
            f"{sweep_dir} is not a sweep: no multirun.yaml and no job folders with "
            ".hydra/overrides.yaml"
        )
    return found


def _overrides(job_dir: Path) -> tuple[list[str] | None, str | None]:
    """The job's overrides from `.hydra/overrides.yaml`, or None and why they are unknown."""
    path = job_dir / ".hydra" / "overrides.yaml"
    try:
        overrides = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except FileNotFoundError:
        return None, "no .hydra/overrides.yaml: its configuration is unknown"
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"unreadable .hydra/overrides.yaml ({type(error).__name__}: {reason})"
    if overrides is None:
        return [], None
    if not isinstance(overrides, list):
        return None, f"malformed .hydra/overrides.yaml: a YAML {type(overrides).__name__}, no list"
    return [str(o) for o in overrides], None


def _row(sweep_dir: Path, job_dir: Path) -> dict[str, Any]:
    overrides, unknown = _overrides(job_dir)
    row = dict(parse_override(o) for o in overrides or [])
    record = read_metrics(job_dir) or {"status": "missing"}  # checked: failed if malformed
    if unknown:  # its numbers belong to no configuration: failed, whatever it recorded
        record = {"status": "failed", "error": unknown}
    row["status"] = record["status"]
    row.update({key: record.get(key) for key in METRIC_KEYS})
    job = job_dir.relative_to(sweep_dir)
    row["job_dir"] = job.as_posix()
    folder = record.get("wandb_dir")  # its wandb run's, made relative to the sweep
    if isinstance(folder, str):
        folder = Path(os.path.normpath(job / folder)).as_posix()
    row["wandb_id"], row["wandb_dir"] = record.get("wandb_id"), folder
    row["error"] = record.get("error")
    return row


def sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before strings, each in their natural order (2 before 10); None last."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One dict per job folder of the sweep: its overrides, status and metrics."""
    sweep_dir = Path(sweep_dir)
    rows = [_row(sweep_dir, d) for d in job_dirs(sweep_dir)]
    keys = override_keys(rows)
    rows.sort(key=lambda r: [sort_key(r.get(k)) for k in keys])
    return rows


def placed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the grid can place: all but the failed ones without a single override (a job
    folder whose overrides are unknown, see `_overrides`)."""
    return [r for r in rows if r["status"] != "failed" or any(k not in RESULT_KEYS for k in r)]


def override_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every override key of the rows, in the order they were first written; seed included."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update((k, None) for k in row if k not in RESULT_KEYS)
    return list(keys)


def values(rows: list[dict[str, Any]], key: str) -> list[Any]:
    """The distinct values `key` takes in `rows`, in their natural order."""
    return sorted({row.get(key) for row in rows}, key=sort_key)


def tally(statuses: Iterable[str]) -> str:
    """How many of each: '2 failed, 1 missing' ("" for none)."""
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(statuses).items()))


def swept_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The override keys that take more than one value, seed excluded."""
    return [k for k in override_keys(rows) if k != SEED_KEY and len(values(rows, k)) > 1]


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Writing `path`: an OSError meanwhile (a read-only folder, a full disk) names `path`
    when it names no file of its own (a failed write() names none)."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


def write_results(sweep_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Write the rows to `<sweep_dir>/results.csv` (atomically) and return its path; an
    OSError names results.csv, whichever step failed."""
    path = Path(sweep_dir) / RESULTS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*override_keys(rows), *RESULT_KEYS], restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    except OSError as error:
        with suppress(OSError):  # what it left, if anything and if it can be removed
            tmp.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    return path


def read_results(sweep_dir: Path) -> list[dict[str, str]]:
    """The rows of `<sweep_dir>/results.csv` as written (every value a string)."""
    with (Path(sweep_dir) / RESULTS_FILE).open(newline="") as f:
        return list(csv.DictReader(f))


@dataclass
class Axis:
    """A grid axis: the swept key ("" for none) and its values, in the order drawn."""

    key: str
    values: list

    def name(self, value) -> str:
        """'model.depth=2', or 'all' on an axis with no key."""
        return f"{self.key}={value}" if self.key else "all"
