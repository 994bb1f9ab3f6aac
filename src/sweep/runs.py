"""A sweep's wandb runs, every one in `<sweep>/wandb/`: `wandb leet <sweep>/wandb` shows the
sweep, `wandb sync <sweep>/wandb` uploads it.

A seed's run id reads as its configuration and seed, `<settings>-seed=<k>-<tag>`
(`depth=3-width=10-seed=2-k3x9q2ab`; a search's trial: `trial=4-seed=0-...`), and so names its
folder, `offline-run-<time>-<id>`. The settings are the swept keys' last names and values, as
in the progress line; characters outside `A-Za-z0-9_.=-` become `_`, and the settings are cut
to keep the id within 64 characters. The tag, 8 characters of a hash of the sweep's own random
id (kept in its state file across resumes) and the seed's folder, makes the id unique in the
wandb project and the same when the sweep resumes into its folder. The report's run is
`report-<tag>`.

A seed's run is removed when the seed is trained again (by its job), and when it was cut short:
a seed started without a record (`remove_seed_runs`, by the main process when the sweep stops on
a signal and when it starts again after a kill).
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


def sweep_key(sweep_dir: Path) -> str:
    """What sets the sweep apart from any other: its random id, or, for a sweep started
    without one (its state file lost), its absolute path."""
    return sweep_state(sweep_dir).get("id") or str(Path(sweep_dir).absolute())


def _tag(key: str, name: str) -> str:
    digest = hashlib.sha256(f"{key}/{name}".encode()).digest()
    return base64.b32encode(digest).decode()[:TAG_LENGTH].lower()


def _seed_name(sweep_dir: Path, seed_dir: Path) -> str:
    """The seed's folder relative to the sweep's (`model.depth=3,model.width=10/seed=2`)."""
    return Path(os.path.relpath(Path(seed_dir).absolute(), Path(sweep_dir).absolute())).as_posix()


def run_label(settings: list[str], seed: int) -> str:
    """`<settings>-seed=<k>` in the characters a run id may hold, the settings cut to leave
    room for the seed and the tag."""
    seed_part = f"seed={seed}"
    room = ID_LENGTH - TAG_LENGTH - len(seed_part) - 2
    head = _NOT_IN_ID.sub("_", "-".join(settings))[:room].rstrip("-")
    return f"{head}-{seed_part}" if head else seed_part


def seed_run(sweep_dir: Path, seed_dir: Path, settings: list[str], seed: int) -> WandbPlace:
    """Where the run of the seed written to `seed_dir` goes, and its id."""
    tag = _tag(sweep_key(sweep_dir), _seed_name(sweep_dir, seed_dir))
    return WandbPlace(Path(sweep_dir), f"{run_label(settings, seed)}-{tag}")


def report_run(sweep_dir: Path) -> WandbPlace:
    """Where the report's run goes, and its id."""
    return WandbPlace(Path(sweep_dir), f"{REPORT}-{_tag(sweep_key(sweep_dir), REPORT)}")


def remove_seed_runs(sweep_dir: Path, seed_dirs: list[Path]) -> None:
    """Remove the wandb runs of the seeds written to `seed_dirs` from `<sweep>/wandb/`."""
    key = sweep_key(sweep_dir)
    _remove_tagged(sweep_dir, {_tag(key, _seed_name(sweep_dir, d)) for d in seed_dirs})


def remove_report_run(sweep_dir: Path) -> None:
    """Remove the report's wandb run (a resumed sweep's report replaces it)."""
    _remove_tagged(sweep_dir, {_tag(sweep_key(sweep_dir), REPORT)})


def _remove_tagged(sweep_dir: Path, tags: set[str]) -> None:
    """Remove the run folders (`<mode>-run-<time>-<id>`) whose id ends in one of `tags`."""
    folder = Path(sweep_dir) / WANDB_DIR
    if not tags or not folder.is_dir():
        return
    for run in folder.iterdir():
        if "run-" in run.name and run.name.rsplit("-", 1)[-1] in tags and not run.is_symlink():
            shutil.rmtree(run, ignore_errors=True)
