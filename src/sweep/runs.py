"""A sweep's wandb runs, all in `<sweep>/wandb/` (`wandb sync <sweep>/wandb` uploads them).

A seed's run id is `<settings>-seed=<k>-<tag>` (`depth=3-width=10-seed=2-k3x9q2ab`), the tag a
hash of the sweep's random id and the seed's folder: unique in the project, the same on a resume.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from pathlib import Path

from src.run.loggers import WandbPlace
from src.sweep.progress import sweep_state

WANDB_DIR = "wandb"  # wandb's own folder name, inside the folder wandb.init is given
ID_LENGTH = 64  # wandb takes longer ids; its folder names and URLs read better short
TAG_LENGTH = 8
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.=-]+")  # wandb refuses :;,#?/' and URLs others
REPORT = "report"


def _tags(sweep_dir: Path, names: list[str]) -> list[str]:
    """Hashes of the sweep's random id (else its path) and each name (a seed's folder, REPORT)."""
    key = sweep_state(sweep_dir).get("id") or str(Path(sweep_dir).absolute())
    digests = (hashlib.sha256(f"{key}/{name}".encode()).digest() for name in names)
    return [base64.b32encode(digest).decode()[:TAG_LENGTH].lower() for digest in digests]


def _seed_name(sweep_dir: Path, seed_dir: Path) -> str:
    """The seed's folder relative to the sweep's (`model.depth=3,model.width=10/seed=2`)."""
    return Path(os.path.relpath(Path(seed_dir).absolute(), Path(sweep_dir).absolute())).as_posix()


def run_label(settings: list[str], seed: int) -> str:
    """`<settings>-seed=<k>` in a run id's characters, the settings cut to leave room."""
    seed_part = f"seed={seed}"
    room = ID_LENGTH - TAG_LENGTH - len(seed_part) - 2
    head = _NOT_IN_ID.sub("_", "-".join(settings))[:room].rstrip("-")
    return f"{head}-{seed_part}" if head else seed_part


def seed_run(sweep_dir: Path, seed_dir: Path, settings: list[str], seed: int) -> WandbPlace:
    """Where the run of the seed written to `seed_dir` goes, and its id."""
    (tag,) = _tags(sweep_dir, [_seed_name(sweep_dir, seed_dir)])
    return WandbPlace(Path(sweep_dir), f"{run_label(settings, seed)}-{tag}")


def report_run(sweep_dir: Path) -> WandbPlace:
    """Where the report's run goes, and its id."""
    (tag,) = _tags(sweep_dir, [REPORT])
    return WandbPlace(Path(sweep_dir), f"{REPORT}-{tag}")


def remove_seed_runs(sweep_dir: Path, seed_dirs: list[Path]) -> None:
    _remove_runs(sweep_dir, [_seed_name(sweep_dir, d) for d in seed_dirs])


def remove_report_run(sweep_dir: Path) -> None:
    _remove_runs(sweep_dir, [REPORT])


def _remove_runs(sweep_dir: Path, names: list[str]) -> None:
    """Remove the run folders (`<mode>-run-<time>-<id>`) whose id ends in the tag of a name."""
    folder = Path(sweep_dir) / WANDB_DIR
    if not names or not folder.is_dir():
        return
    tags = set(_tags(sweep_dir, names))
    for run in folder.iterdir():
        if "run-" in run.name and run.name.rsplit("-", 1)[-1] in tags and not run.is_symlink():
            shutil.rmtree(run, ignore_errors=True)
