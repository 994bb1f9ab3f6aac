"""Shared fixtures: configs composed in-process from conf/, sized to train in a blink."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import src.train  # noqa: F401  (registers the resolvers conf/train.yaml uses)

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
# Small enough that a whole training takes well under a second.
TINY = [
    "data.n_train=64",
    "data.n_val=32",
    "data.n_test=32",
    "data.batch_size=16",
    "trainer.max_epochs=2",
]


def start_sweep(config) -> None:
    """What `python -m src.train -m` does with a multirun's composed config before its first
    job: its sweeper checks and plans the sweep (`config.hydra.overrides.task`) and opens its
    folder. Used where the sweep is refused (exit 2): no launcher is set up to run a job."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import HydraContext
    from hydra.utils import instantiate

    sweeper = instantiate(config.hydra.sweeper)
    sweeper.config = config
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
        sweeper.sweep(list(config.hydra.overrides.task))


def planned(config) -> tuple[int, list[str]]:
    """How many runs the config's sweeper plans (`config.hydra.overrides.task`), and which
    keys it sweeps."""
    from hydra.utils import instantiate

    sweeper = instantiate(config.hydra.sweeper)
    sweeper.config = config
    plan = sweeper.plan(list(config.hydra.overrides.task))
    return plan.total, plan.swept


NO_SLURM = "no SLURM cluster answers (sinfo): start one with bash tests/slurm_cluster.sh start"


def _slurm_answers() -> bool:
    """Whether `sinfo` answers: a SLURM cluster (tests/slurm_cluster.sh's or another) is up."""
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if shutil.which("sinfo") is None or not conf.is_file():
        return False  # without its slurm.conf, sinfo retries for 60 s before it fails
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def pytest_collection_modifyitems(config, items):
    # Tests marked slurm are skipped where no cluster answers, and fail under CI=true, whose
    # .ci/run starts one; sinfo runs once, and only when such a test was collected.
    slurm = [item for item in items if item.get_closest_marker("slurm")]
    if slurm and not _slurm_answers():
        ci = os.environ.get("CI") == "true"
        mark = (
            pytest.mark.usefixtures("_no_slurm_in_ci") if ci else pytest.mark.skip(reason=NO_SLURM)
        )
        for item in slurm:
            item.add_marker(mark)


@pytest.fixture
def _no_slurm_in_ci():
    pytest.fail(f"{NO_SLURM} (CI=true: .ci/run starts one, so a cluster test may not skip)")


@pytest.fixture
def make_cfg(tmp_path):
    """compose('train') with overrides, writing under tmp_path, logger off unless overridden."""

    def _make(*overrides: str, tiny: bool = True, name: str = "train"):
        defaults = ["logger=none", f"output_dir={tmp_path / 'run'}"] + (TINY if tiny else [])
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(name, overrides=defaults + list(overrides))

    return _make


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch, tmp_path):
    # Never touch the network or the user's wandb settings from a test.
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    os.environ.pop("WANDB_API_KEY", None)


def wandb_records(wandb_dir: Path) -> list[bytes]:
    """The transaction logs of the offline runs under `wandb_dir`, once wandb wrote them.

    wandb.finish() can return before wandb's service has written the run's file out;
    wandb.teardown() waits for the service to end (the next run starts a new one).
    """
    import wandb

    wandb.teardown()
    return [p.read_bytes() for p in sorted(Path(wandb_dir).glob("offline-run-*/*.wandb"))]


def wandb_log_records(record_file: bytes):
    """The protobuf Records in one run's .wandb transaction log, in order.

    The file is a LevelDB-style log, as wandb writes it: a 7-byte header, then 32 KiB blocks
    of chunks, each with a 7-byte header (checksum, little-endian length, type: 1 full,
    2 first, 3 middle, 4 last) and part of one protobuf Record.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    block, pos, data = 32768, 7, b""
    while pos + 7 <= len(record_file):
        if block - pos % block < 7:  # too little room left for a header: padding
            pos += block - pos % block
            continue
        length = int.from_bytes(record_file[pos + 4 : pos + 6], "little")
        kind = record_file[pos + 6]
        data += record_file[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a record is complete
            record = pb.Record()
            record.ParseFromString(data)
            data = b""
            yield record


def _items(items) -> dict[str, object]:
    return {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}


def wandb_history(record_file: bytes) -> list[dict[str, object]]:
    """The history rows (what each wandb.log sent) in one run's .wandb transaction log."""
    return [
        _items(r.history.item)
        for r in wandb_log_records(record_file)
        if r.WhichOneof("record_type") == "history"
    ]


def wandb_run_info(record_file: bytes) -> dict[str, object]:
    """The run's id, display name, group, job type, config and exit code (None: it never
    ended), as the log records them."""
    info: dict[str, object] = {"config": {}, "exit_code": None}
    for record in wandb_log_records(record_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            info.update(display_name=run.display_name, group=run.run_group, job_type=run.job_type)
            info.update(run_id=run.run_id)
            info["config"].update(_items(run.config.update))
        elif kind == "config":
            info["config"].update(_items(record.config.update))
        elif kind == "exit":
            info["exit_code"] = record.exit.exit_code
    return info


def wandb_inspect(run_folder: Path) -> dict[str, object]:
    """One offline run as wandb's own reader prints it (`wandb leet inspect --json`, a public
    command; wandb 0.31 has no public Python reader of offline runs): its id, display name,
    group, job type, config, latest summary and exit code (None: the run never ended)."""
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    info: dict[str, object] = {"config": {}, "summary": {}, "exit_code": None}
    for record in map(json.loads, done.stdout.splitlines()):
        kind = record["type"]
        if kind == "run":
            run = record["run"]
            info.update(run_id=run["run_id"], display_name=run.get("display_name"))
            info.update(group=run.get("run_group", ""), job_type=run.get("job_type"))
            info["config"].update(run.get("config", {}).get("update", {}))
        elif kind in ("config", "summary"):
            info[kind].update(record[kind].get("update", {}))
        elif kind == "exit":
            info["exit_code"] = record["exit"].get("exit_code", 0)
    return info
