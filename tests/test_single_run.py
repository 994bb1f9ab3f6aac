"""`python -m src.train` without -m: a run reports itself in one line per seed (console and its
train.log), a refused one is one line on stderr, exit status 2, and leaves no output folder,
and a file it cannot write ends it with one line naming the file and why."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from src.errors import ConfigError
from src.run.files import remove_unused_run_dir, unique_dir
from src.train import single_run, summary_line

from .conftest import ROOT, TINY

NUMBER = r"(\d\.\d+|\d|nan)(e-\d+)?"
LINE = (
    r"\[[^]]+\]\[src\.train\]\[INFO\] - {seed}ok, val_loss {n}, val_accuracy {n}, "
    r"test_loss {n}, test_accuracy {n}, in (?P<folder>\S+)$"
)


def python_m_src_train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    """python -m src.train in `cwd` (its outputs/ there), as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", "src.train", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_stacked_run_reports_each_seed_on_the_console_and_in_its_log(tmp_path):
    done = python_m_src_train(tmp_path, "logger=none", "seeds=[0,1]", *TINY)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "[src.train]" in line]
    assert len(lines) == 2, done.stdout
    folders = []
    for seed, line in zip((0, 1), lines):
        found = re.match(LINE.format(seed=f"seed={seed}: ", n=NUMBER), line)
        assert found, line
        folders.append(tmp_path / found["folder"])
    run = folders[0].parent
    assert re.fullmatch(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", str(run.relative_to(tmp_path)))
    assert folders == [run / "seed=0", run / "seed=1"]
    for folder in folders:
        assert (folder / "metrics.json").is_file() and (folder / "model.pt").is_file()
    logged = (run / "train.log").read_text().splitlines()
    assert [line for line in logged if "[src.train]" in line] == lines


def test_a_refused_run_is_one_line_exit_2_and_leaves_no_folder(tmp_path):
    done = python_m_src_train(tmp_path, "logger=none", "+model.foo=1")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: model.foo=1 is not allowed: a key of model: "
        "depth, width, activation, lr, optimizer, residual, norm, init"
    ]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "outputs").exists()  # nor outputs/<date>/, which it made too


# -- in this process: the single run's code without Hydra's start-up --------------------------


def test_a_single_run_reports_itself(make_cfg, tmp_path, caplog):
    with caplog.at_level("INFO", logger="src.train"):
        loss = single_run(make_cfg())
    [line] = [r.getMessage() for r in caplog.records if r.name == "src.train"]
    assert re.fullmatch(LINE.split(" - ", 1)[1].format(seed="", n=NUMBER), line), line
    assert f"val_loss {loss:.4g}," in line and line.endswith(f"in {tmp_path / 'run'}")


def test_the_line_of_a_diverged_run():
    metrics = {"status": "diverged", "val_loss": float("nan"), "val_accuracy": 0.5}
    metrics |= {"test_loss": float("inf"), "test_accuracy": 0.5}
    line = summary_line(3, metrics, Path("/x/seed=3"))
    assert line == (
        "seed=3: diverged, val_loss nan, val_accuracy 0.5, test_loss inf, test_accuracy 0.5, "
        "in /x/seed=3"
    )


def test_a_full_disk_ends_the_run_with_one_line_and_no_traceback(make_cfg, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".metrics.json.tmp").symlink_to("/dev/full")  # every write to it: ENOSPC
    with pytest.raises(SystemExit) as exit_:
        single_run(make_cfg())
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot write {out / 'metrics.json'}: No space left on device\n"
    assert not (out / "metrics.json").exists() and not (out / ".metrics.json.tmp").exists()


def test_weights_on_a_full_disk_say_so_too(make_cfg, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.pt").symlink_to("/dev/full")  # torch's own error would hide the errno
    with pytest.raises(SystemExit) as exit_:
        single_run(make_cfg())
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot write {out / 'model.pt'}: No space left on device\n"


def test_a_read_only_folder_ends_the_run_with_one_line(make_cfg, tmp_path, capsys, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(SystemExit) as exit_:
        single_run(make_cfg("seeds=[0,1]"))
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot write {tmp_path / 'run' / 'seed=0'}: Read-only file system\n"


def test_an_output_dir_that_is_a_file_is_refused_not_failed(make_cfg, tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    for out in (file, file / "run"):
        with pytest.raises(ConfigError) as error:
            single_run(make_cfg(f"output_dir={out}"))  # the command line: one line, exit 2
        assert str(error.value) == (
            f"output_dir='{out}' is not allowed: a folder that can be made "
            f"({file} is a file, not a folder)"
        )
    assert file.read_text() == "keep me"


# -- the refused run's folder ----------------------------------------------------------------


def test_only_a_folder_this_process_made_and_hydra_alone_wrote_is_removed(tmp_path):
    made = Path(unique_dir(str(tmp_path / "outputs" / "day" / "time")))
    (made / ".hydra").mkdir()
    (made / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (made / "train.log").write_text("")
    assert remove_unused_run_dir(made)
    assert not (tmp_path / "outputs").exists()  # with the parents it made for it

    (tmp_path / "outputs").mkdir()  # a parent that was there before stays
    again = Path(unique_dir(str(tmp_path / "outputs" / "day" / "time")))
    assert remove_unused_run_dir(again)
    assert list(tmp_path.iterdir()) == [tmp_path / "outputs"]
    assert not (tmp_path / "outputs" / "day").exists()

    used = Path(unique_dir(str(tmp_path / "outputs" / "time")))
    (used / "metrics.json").write_text("{}")  # a run wrote there: kept
    assert not remove_unused_run_dir(used) and (used / "metrics.json").exists()

    given = tmp_path / "given"  # hydra.run.dir=given: not made by unique_dir, kept
    given.mkdir()
    assert not remove_unused_run_dir(given) and given.exists()
