"""Sweep control without training: job counts, launcher checks, resume rules, progress lines."""

import json
import time

import pytest
from omegaconf import OmegaConf

from src.config import ConfigError
from src.runs import write_json_atomic
from src.sweep import (
    STATE_FILE,
    check_launcher,
    check_resume,
    clear_attempt,
    finished_metrics,
    mark_unfinished,
    plan,
    progress_line,
)

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def master(task, params=None, sweeper=BASIC, **extra):
    """The parts of a multirun's master config that the sweep control reads."""
    hydra = {
        "sweeper": {"_target_": sweeper, "params": params, **extra},
        "overrides": {"task": task},
    }
    return OmegaConf.create({"hydra": hydra})


def test_plan_counts_the_grid_and_names_the_swept_keys():
    grid = ["model.depth=0,1,2,3,5,10,20", "model.width=1,2,3,5,10,20", "seed=range(6)"]
    assert plan(master(grid + ["trainer.max_epochs=3"])) == (
        252,
        ["model.depth", "model.width", "seed"],
    )
    assert plan(master(["seed=1"])) == (1, [])
    assert plan(master(["seed=0,1"], params={"model.lr": "0.1,0.01"})) == (4, ["model.lr", "seed"])


def test_plan_of_a_search_is_its_trial_count():
    config = master([], params={"model.lr": "tag(log, interval(0.001, 0.1))"}, n_trials=30)
    assert plan(config) == (30, ["model.lr"])


@pytest.mark.parametrize(
    "launcher, key",
    [
        ({"_target_": "x.JoblibLauncher", "n_jobs": 0}, "hydra.launcher.n_jobs"),
        ({"_target_": "x.JoblibLauncher", "n_jobs": "two"}, "hydra.launcher.n_jobs"),
        ({"_target_": "x.submitit.SlurmLauncher", "timeout_min": 0}, "hydra.launcher.timeout_min"),
        (
            {"_target_": "x.submitit.SlurmLauncher", "timeout_min": 5, "mem_gb": -1},
            "hydra.launcher.mem_gb",
        ),
        (
            {"_target_": "x.submitit.SlurmLauncher", "timeout_min": 5, "cpus_per_task": 0},
            "hydra.launcher.cpus_per_task",
        ),
    ],
)
def test_bad_launcher_settings_are_refused(launcher, key):
    with pytest.raises(ConfigError) as error:
        check_launcher(OmegaConf.create(launcher))
    assert error.value.key == key


def test_good_launcher_settings_pass():
    check_launcher(OmegaConf.create({"_target_": "x.JoblibLauncher", "n_jobs": -1}))
    check_launcher(OmegaConf.create({"_target_": "x.submitit.LocalLauncher", "timeout_min": 5}))


def test_resume_only_into_a_folder_of_the_same_sweep(tmp_path):
    first = master(["model.depth=0,1", "seed=range(2)", "trainer.max_epochs=3"])
    OmegaConf.save(first, tmp_path / "multirun.yaml")
    ok = tmp_path / "model.depth=0" / "seed=0"
    ok.mkdir(parents=True)
    write_json_atomic(ok / "metrics.json", {"status": "ok", "val_loss": 0.1})
    # more values of the same keys: fine, and the finished job is counted
    assert (
        check_resume(
            tmp_path, master(["model.depth=0,1,2", "seed=range(4)", "trainer.max_epochs=3"])
        )
        == 1
    )
    for other in (
        ["model.depth=0,1", "seed=range(2)", "trainer.max_epochs=5"],  # another fixed value
        [
            "model.depth=0,1",
            "model.width=1,2",
            "seed=range(2)",
            "trainer.max_epochs=3",
        ],  # another key
    ):
        with pytest.raises(ConfigError) as error:
            check_resume(tmp_path, master(other))
        assert error.value.key == "hydra.sweep.dir"


def test_finished_jobs_are_kept_and_unfinished_attempts_cleared(tmp_path):
    assert finished_metrics(tmp_path) is None
    for status, finished in (("ok", True), ("diverged", True), ("failed", False)):
        write_json_atomic(tmp_path / "metrics.json", {"status": status})
        assert (finished_metrics(tmp_path) is not None) == finished
    (tmp_path / "wandb" / "offline-run-1").mkdir(parents=True)
    clear_attempt(tmp_path)
    assert not (tmp_path / "wandb").exists() and not (tmp_path / "metrics.json").exists()


def test_jobs_cut_short_are_marked_failed(tmp_path):
    for name, done in (("a", True), ("b", False)):
        job = tmp_path / name / "seed=0"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
        if done:
            write_json_atomic(job / "metrics.json", {"status": "ok"})
    assert mark_unfinished(tmp_path) == [tmp_path / "b" / "seed=0"]
    record = json.loads((tmp_path / "b" / "seed=0" / "metrics.json").read_text())
    assert record["status"] == "failed" and "rerun" in record["error"]
    assert json.loads((tmp_path / "a" / "seed=0" / "metrics.json").read_text())["status"] == "ok"


def test_progress_line_counts_the_sweep_and_estimates_the_rest(tmp_path):
    started = time.time() - 10
    state = {"total": 4, "swept": ["model.depth", "seed"], "started": started}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    for seed in (0, 1):
        job = tmp_path / "model.depth=3" / f"seed={seed}"
        job.mkdir(parents=True)
        write_json_atomic(job / "metrics.json", {"status": "ok"})
    metrics = {"status": "ok", "val_loss": 0.01234, "seconds": 1.42}
    line = progress_line(tmp_path, ["model.depth=3", "seed=1", "logger=none"], metrics)
    assert line.startswith("[2/4] depth=3 seed=1 val_loss=0.01234 1.4s, ETA ")
    eta = line.rsplit("ETA ", 1)[1]
    assert eta in {"10s", "11s"}  # 10 s for 2 jobs so far, 2 to go

    line = progress_line(tmp_path, ["model.lr=0.0845", "seed=1"], metrics)
    assert line.startswith("[2/4] seed=1 val_loss")  # model.lr is not swept here
    state["swept"].append("model.lr")
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert "lr=0.0845 seed=1 val_loss" in progress_line(
        tmp_path, ["model.lr=0.0845", "seed=1"], metrics
    )

    failed = progress_line(tmp_path, ["model.depth=3"], {"status": "failed", "error": "boom"})
    assert failed == "[2/4] depth=3 FAILED: boom, ETA " + failed.rsplit("ETA ", 1)[1]
