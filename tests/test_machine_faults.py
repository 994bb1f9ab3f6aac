"""What the machine, not the command line, does to a run or a sweep: wandb online without a
login or a server, a disk that fills up, a folder name the file system cannot hold. Each ends
in one line with its exit status, never a traceback (a torn study journal: test_search.py)."""

from __future__ import annotations

import errno
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from src.errors import ConfigError
from src.folders import make_folder
from src.run.files import no_space
from src.run.validation import WANDB_ANSWER_SECONDS, answers
from src.sweep.lock import holder
from src.sweep.progress import sweep_state

from .conftest import CONF, ROOT, TINY
from .test_launchers import records, sweep_cmd

FAKE_KEY = "x" * 40  # the length of a wandb API key


def run(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return done, time.monotonic() - start


def one_line(done: subprocess.CompletedProcess) -> str:
    """The process's only line on stderr, after checking there is no traceback anywhere."""
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# -- wandb online ----------------------------------------------------------------------------


@pytest.fixture
def no_wandb_login(tmp_path) -> dict[str, str]:
    """The environment of a user who never ran `wandb login`: a HOME without a .netrc or wandb
    settings, no WANDB_API_KEY, and wandb's mode left to logger.mode."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NETRC"))}
    return {**env, "HOME": str(home), "WANDB_SILENT": "true"}


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (taken, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wandb_online_without_a_login_is_refused_once_before_any_job(tmp_path, no_wandb_login):
    sweep = tmp_path / "sweep"
    command = sweep_cmd(sweep, "logger.mode=online", "model.width=3,4", "seed=0,1", *TINY)
    done, _ = run(command, no_wandb_login)
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("error: logger.mode='online' is not allowed: a wandb login (no API key")
    assert "`wandb login`" in line and f"`wandb sync {sweep / 'wandb'}`" in line
    assert "logger.mode=offline" in line
    assert not sweep.exists()  # refused before the sweep's folder, let alone a job


def test_wandb_online_without_a_server_is_refused_within_seconds(tmp_path, no_wandb_login):
    url = f"http://127.0.0.1:{closed_port()}"
    env = {**no_wandb_login, "WANDB_API_KEY": FAKE_KEY, "WANDB_BASE_URL": url}
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "src.train", "logger.mode=online", f"hydra.run.dir={run_dir}"]
    done, seconds = run(command + TINY, env)
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith(
        "error: logger.mode='online' is not allowed: a wandb server that answers"
    )
    assert f"({url} did not answer within {WANDB_ANSWER_SECONDS} s)" in line
    assert f"`wandb sync {run_dir / 'wandb'}`" in line
    assert not (run_dir / "metrics.json").exists()
    assert seconds < 60  # wandb itself waits 96 s per run before it gives up


def test_a_server_answers_with_any_status_and_not_when_silent_or_gone():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()  # accepts connections (the kernel does) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        assert answers(f"http://127.0.0.1:{server.server_address[1]}/", 5)
        start = time.monotonic()
        assert not answers(f"http://127.0.0.1:{silent.getsockname()[1]}/", 0.5)
        assert time.monotonic() - start < 5
        assert not answers(f"http://127.0.0.1:{closed_port()}/", 5)
    finally:
        server.shutdown()
        silent.close()


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 96 kB tmpfs (a disk that fills up within a sweep's first job); root only."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_stops_the_sweep_in_one_line_and_a_rerun_completes_it(small_disk):
    sweep = small_disk / "sweep"
    command = sweep_cmd(sweep, "model.depth=1", "model.width=3,4", "seed=0,1", "logger=none")
    env = {**os.environ, "WANDB_MODE": "offline"}
    done, _ = run(command + TINY, env)
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith(f"error: no space left on device in {sweep}: the sweep stopped (")
    assert line.endswith("free some space and rerun the same command to resume")
    for record in records(sweep).values():  # what the disk took: finished, or failed for it
        assert record["status"] == "ok" or "no space left on device" in record["error"]
    assert len(records(sweep)) < 4
    sweep_id = sweep_state(sweep)["id"]
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    rerun, _ = run(command + TINY, env)
    assert rerun.returncode == 0, rerun.stderr
    assert sweep_state(sweep)["id"] == sweep_id and holder(sweep) is None  # its state, its lock
    assert [r["status"] for r in records(sweep).values()] == ["ok"] * 4
    with (sweep / "results.csv").open() as f:
        assert len(f.read().splitlines()) == 1 + 4


def test_jobs_cut_short_by_a_full_disk_are_recorded_with_that_cause(tmp_path):
    sweep = tmp_path / "sweep"
    job = sweep / "model.width=3" / "seed=0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=0\n")  # started, no record
    script = (
        "import errno, sys\n"
        "from src.sweep.preflight import mark_unfinished\n"
        "from src.sweep.lifetime import stop_on_full_disk\n"
        f"with stop_on_full_disk({str(sweep)!r}, mark_unfinished):\n"
        "    raise OSError(errno.EDQUOT, 'Disk quota exceeded')\n"
    )
    done, _ = run([sys.executable, "-c", script], dict(os.environ))
    assert done.returncode == 1
    assert one_line(done) == (
        f"error: no space left on device in {sweep}: the sweep stopped (1 job(s) it cut short "
        "recorded as failed, as far as the disk took records); free some space and rerun the "
        "same command to resume"
    )
    record = json.loads((job / "metrics.json").read_text())
    assert record == {
        "status": "failed",
        "error": f"no space left on device in {sweep}; free some and rerun the sweep",
    }


def test_a_full_disk_is_found_in_what_it_caused():
    assert no_space(OSError(errno.ENOSPC, "No space left on device")) is not None
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as error:
            raise RuntimeError("file write failed") from error
    except RuntimeError as error:
        assert no_space(error).errno == errno.EDQUOT
    assert no_space(OSError(errno.EROFS, "Read-only file system")) is None
    assert no_space(ValueError("x")) is None


# -- a name the file system cannot hold --------------------------------------------------------


def test_a_folder_name_too_long_is_refused_naming_its_length(tmp_path):
    with pytest.raises(ConfigError) as error:
        make_folder("hydra.run.dir", tmp_path / ("a" * 300) / "b")
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert str(error.value).endswith(
        f"is not allowed: a folder that can be made (a name of 300 characters in it "
        f"({'a' * 20}...), the file system takes at most {limit})"
    )


@pytest.mark.parametrize("multirun", [False, True])
def test_a_run_or_sweep_folder_too_long_is_one_line_exit_2(tmp_path, multirun):
    folder = tmp_path / ("a" * 300)
    if multirun:
        command = sweep_cmd(folder, "model.width=3,4", "logger=none")
    else:
        command = [sys.executable, "-m", "src.train", f"hydra.run.dir={folder}", "logger=none"]
    done, _ = run(command + TINY, {**os.environ, "WANDB_MODE": "offline"})
    assert done.returncode == 2
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    assert one_line(done).startswith(f"error: {key}='{folder}' is not allowed: a folder that")
    assert "a name of 300 characters" in done.stderr


def test_a_grid_whose_job_folder_name_is_too_long_is_refused(tmp_path):
    from hydra import compose, initialize_config_dir

    from hydra_plugins.stacked_sweepers.overrides import check_folder_names, folder_name

    overrides = [f"hydra.sweep.dir={tmp_path}", "logger=wandb"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        master = compose("train", overrides, return_hydra_config=True)
    naming = master.hydra.job.config.override_dirname
    tags = "logger.tags=[" + ",".join(c * 60 for c in "abc") + "]"  # 196 characters
    job = ["model.width=3", tags, "++seeds=[0,1]"]
    assert folder_name(job, naming) == f"{tags},model.width=3"  # seeds left out, sorted
    check_folder_names(master, [job, [tags, f"model.lr={'1' * 49}"]])  # 255 characters: fit
    with pytest.raises(ConfigError) as error:
        check_folder_names(master, [job, [tags, f"model.lr={'1' * 50}"]])  # 256: too long
    assert error.value.key == "hydra.sweep.subdir"
    assert "job folder names of at most 255 bytes" in str(error.value)
