"""Sweep control without training: job counts, launcher checks, resume rules, progress lines."""

import json
import os
import time

import pytest
from omegaconf import OmegaConf

from src.errors import ConfigError
from src.run.files import write_json_atomic
from src.sweep import progress
from src.sweep.jobs import clear_attempt, finished_metrics
from src.sweep.preflight import check_launcher, check_resume, mark_unfinished
from src.sweep.progress import STATE_FILE, eta_seconds, progress_line, progress_lines

from .conftest import planned, start_sweep
from .test_results import job_record

GRID = "hydra_plugins.stacked_sweepers.grid_sweeper.SeedStackingSweeper"


def master(task, params=None, sweeper=GRID, **extra):
    """The parts of a multirun's master config that the sweep control reads."""
    hydra = {
        "sweeper": {"_target_": sweeper, "params": params, **extra},
        "overrides": {"task": task},
    }
    return OmegaConf.create({"hydra": hydra})


def test_plan_counts_the_grid_and_names_the_swept_keys():
    grid = ["model.depth=0,1,2,3,5,10,20", "model.width=1,2,3,5,10,20", "seed=range(6)"]
    assert planned(master(grid + ["trainer.max_epochs=3"])) == (
        252,
        ["model.depth", "model.width", "seed"],
    )
    assert planned(master(["seed=1"])) == (1, [])
    assert planned(master(["seed=0,1"], params={"model.lr": "0.1,0.01"})) == (
        4,
        ["model.lr", "seed"],
    )


SEARCH = "hydra_plugins.stacked_sweepers.optuna_sweeper.StackedSearchSweeper"


def test_plan_of_a_search_is_its_trials_times_their_seeds():
    params = {"model.lr": "tag(log, interval(0.001, 0.1))", "seed": "range(3)"}
    config = master([], params=params, sweeper=SEARCH, kind="search", n_trials=30, seed_key="seed")
    assert planned(config) == (90, ["model.lr"])
    config.hydra.overrides.task = ["seed=4", "model.depth=choice(1,2)"]  # one seed a trial
    config.seed = 4
    assert planned(config) == (30, ["model.depth", "model.lr"])


POOL = {"_target_": "x.cluster.JobqueueLauncher", "workers": 2, "retries": 1, "timeout_min": 5,
        "port": 0, "death_timeout_s": 60}  # fmt: skip


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
        ({**POOL, "workers": 0}, "hydra.launcher.workers"),
        ({**POOL, "retries": -1}, "hydra.launcher.retries"),
        ({**POOL, "timeout_min": 0}, "hydra.launcher.timeout_min"),
        ({**POOL, "port": 70000}, "hydra.launcher.port"),
        ({**POOL, "death_timeout_s": 0}, "hydra.launcher.death_timeout_s"),
        ({"_target_": "x.JoblibLauncher", "n_jobs": 2**70}, "hydra.launcher.n_jobs"),
        ({"_target_": "x.JoblibLauncher", "n_jobs": -(2**70)}, "hydra.launcher.n_jobs"),
        (
            {"_target_": "x.submitit.SlurmLauncher", "timeout_min": 2**70},
            "hydra.launcher.timeout_min",
        ),
        (
            {"_target_": "x.submitit.SlurmLauncher", "timeout_min": 5, "mem_gb": float("inf")},
            "hydra.launcher.mem_gb",
        ),
        (
            {"_target_": "x.submitit.SlurmLauncher", "timeout_min": 5, "array_parallelism": 2**70},
            "hydra.launcher.array_parallelism",
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
    check_launcher(OmegaConf.create(POOL))


def test_resume_only_into_a_folder_of_the_same_sweep(tmp_path):
    first = master(["model.depth=0,1", "seed=range(2)", "trainer.max_epochs=3"])
    OmegaConf.save(first, tmp_path / "multirun.yaml")
    ok = tmp_path / "model.depth=0" / "seed=0"
    ok.mkdir(parents=True)
    write_json_atomic(ok / "metrics.json", job_record())
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


def test_a_sweep_folder_from_before_sweepers_had_a_kind_resumes(tmp_path):
    task = ["model.depth=0,1", "seed=range(2)"]
    OmegaConf.save(master(task), tmp_path / "multirun.yaml")  # its sweeper has no kind
    assert check_resume(tmp_path, master(task, kind="grid")) == 0
    OmegaConf.save(master(task, kind="search"), tmp_path / "multirun.yaml")
    with pytest.raises(ConfigError, match=r"differs in: hydra.sweeper.kind\)"):
        check_resume(tmp_path, master(task, kind="grid"))


def test_finished_jobs_are_kept_and_unfinished_attempts_cleared(tmp_path):
    assert finished_metrics(tmp_path) is None
    for status, finished in (("ok", True), ("diverged", True), ("failed", False)):
        record = job_record(status) if status != "failed" else {"status": "failed"}
        write_json_atomic(tmp_path / "metrics.json", record)
        assert (finished_metrics(tmp_path) is not None) == finished
    write_json_atomic(tmp_path / "metrics.json", {"status": "ok"})  # but no metrics: malformed
    assert finished_metrics(tmp_path) is None
    clear_attempt(tmp_path, tmp_path.parent)  # its wandb run: tests/test_wandb_runs.py
    assert not (tmp_path / "metrics.json").exists()


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


def write_jobs(sweep, names, finish_times):
    """Job folders with a metrics.json each, written (mtime) at the given times."""
    for name, when in zip(names, finish_times):
        job = sweep / name
        job.mkdir(parents=True)
        write_json_atomic(job / "metrics.json", {"status": "ok"})
        os.utime(job / "metrics.json", (when, when))


def test_progress_line_counts_the_sweep_and_names_the_swept_settings(tmp_path):
    state = {"total": 4, "swept": ["model.depth", "seed"], "started": time.time() - 10}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    write_jobs(tmp_path, ["model.depth=3/seed=0", "model.depth=3/seed=1"], [time.time()] * 2)
    metrics = {"status": "ok", "val_loss": 0.01234, "seconds": 1.42}
    line = progress_line(tmp_path, ["model.depth=3", "seed=1", "logger=none"], metrics)
    assert line == "[2/4] depth=3 seed=1 val_loss=0.01234 1.4s"  # too early for an ETA

    line = progress_line(tmp_path, ["model.lr=0.0845", "seed=1"], metrics)
    assert line.startswith("[2/4] seed=1 val_loss")  # model.lr is not swept here
    state["swept"].append("model.lr")
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert "lr=0.0845 seed=1 val_loss" in progress_line(
        tmp_path, ["model.lr=0.0845", "seed=1"], metrics
    )

    failed = progress_line(tmp_path, ["model.depth=3"], {"status": "failed", "error": "boom"})
    assert failed == "[2/4] depth=3 FAILED: boom"


def test_the_record_index_counts_as_the_records_do_without_a_walk(tmp_path, monkeypatch):
    state = {"total": 5, "swept": ["model.depth"], "started": time.time() - 10}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    earlier = time.time() - 100
    write_jobs(tmp_path, ["model.depth=0/seed=0", "model.depth=1/seed=0"], [earlier] * 2)
    progress.index_records(tmp_path)  # a resumed sweep: its records, at their own times
    assert sorted(progress.finish_times(tmp_path)) == pytest.approx([earlier] * 2, abs=0.002)
    job = tmp_path / "model.depth=2" / "seed=0"
    write_jobs(tmp_path, ["model.depth=2/seed=0"], [time.time()])
    progress.note_record(tmp_path, job)
    clear_attempt(tmp_path / "model.depth=0" / "seed=0", tmp_path)  # to be retrained
    monkeypatch.setattr(progress, "sweep_files", lambda *a: pytest.fail("walked the sweep"))
    metrics = {"status": "ok", "val_loss": 0.5, "seconds": 1.0}
    assert progress_line(tmp_path, ["model.depth=2"], metrics).startswith("[2/5] depth=2 ")
    progress.index_records(tmp_path)  # kept as it is: no walk, no entry twice
    assert len(progress.finish_times(tmp_path)) == 2


def test_a_stacks_progress_lines_share_one_count_and_name_each_seed(tmp_path):
    state = {"total": 6, "swept": ["model.depth", "seed"], "started": time.time() - 10}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    write_jobs(tmp_path, [f"model.depth=3/seed={s}" for s in range(3)], [time.time()] * 3)
    runs = [(["model.depth=3", "seed=0"], {"status": "ok", "val_loss": 0.5, "seconds": 2.0})]
    runs += [(["model.depth=3", "seed=2"], {"status": "failed", "error": "boom"})]
    assert progress_lines(tmp_path, runs) == [
        "[3/6] depth=3 seed=0 val_loss=0.5 2.0s",
        "[3/6] depth=3 seed=2 FAILED: boom",
    ]


def test_progress_eta_comes_from_the_jobs_throughput_not_the_start_up(tmp_path):
    # 60 s of start-up (imports, workers), then stacks of 6 seeds, one every 5 s, each stack
    # writing its seeds 10 ms apart; 2 stacks finished in an earlier run of the sweep.
    now = time.time()
    started = now - 80
    state = {"total": 60, "swept": ["model.depth", "seed"], "started": started}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    earlier = [f"model.depth={d}/seed={s}" for d in (0, 1) for s in range(6)]
    write_jobs(tmp_path, earlier, [started - 100] * 12)  # resumed: not this run's rate
    metrics = {"status": "ok", "val_loss": 0.5, "seconds": 4.0}  # a stack trains in 4 s

    def finish_stack(depth: int, when: float) -> str:
        names = [f"model.depth={depth}/seed={s}" for s in range(6)]
        write_jobs(tmp_path, names, [when + 0.01 * s for s in range(6)])
        return progress_line(tmp_path, [f"model.depth={depth}", "seed=5"], metrics)

    # The first stack, 60 s after the start: elapsed / finished gave "ETA 6m40s" here.
    assert finish_stack(2, started + 60) == "[18/60] depth=2 seed=5 val_loss=0.5 4.0s"
    # Then 6 seeds in the 5 s after the first stack, 1.2 a second: 36 seeds to go in 30 s.
    assert finish_stack(3, started + 65) == "[24/60] depth=3 seed=5 val_loss=0.5 4.0s, ETA 30s"
    assert finish_stack(4, started + 70).endswith(", ETA 25s")
    assert finish_stack(5, started + 75).endswith(", ETA 20s")


def test_eta_waits_for_a_few_finishes_over_a_job_s_own_duration():
    # 4 parallel workers, 8 s jobs: the first round finishes within 0.3 s.
    first_round = [8.0, 8.1, 8.2, 8.3]
    assert eta_seconds(first_round, 4, 40) is None  # one moment: no rate yet
    spread = [8.0, 9.5, 11.0, 12.5]  # past SAME_MOMENT, but not one job's duration long
    assert eta_seconds(spread, 4, 40, job_seconds=8.0) is None
    assert eta_seconds(spread, 4, 40) == pytest.approx(36 * 3.0 / 2)  # without it: 2 after 9.5
    second_round = first_round + [16.0, 16.1, 16.2, 16.3]
    assert eta_seconds(second_round, 8, 40, job_seconds=8.0) == pytest.approx(32 * 8.0 / 4)
    assert eta_seconds(second_round, 40, 40) is None  # done
    assert eta_seconds(second_round, 8, None) is None  # a sweep of unknown size
    assert eta_seconds([], 0, 40) is None


@pytest.mark.parametrize(
    "task, named",
    [
        (["seed=range(0)"], "error: seed='range(0)' is not allowed: a sweep over at least one"),
        (["seed=1,1,2"], "error: seed='1,1,2' is not allowed: a sweep over distinct values"),
        (["model.depth=2,2"], "error: model.depth='2,2' is not allowed: a sweep over distinct"),
        (["logger.project=a/b"], "error: logger.project='a/b' is not allowed: a name of 1 to"),
        (["+model.foo=1"], "error: model.foo=1 is not allowed: a key of model: depth, width"),
    ],
)
def test_a_bad_grid_is_refused_before_any_job(tmp_path, capsys, task, named):
    from hydra import compose, initialize_config_dir

    from .conftest import CONF

    plain = [o for o in task if "," not in o and "range" not in o]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = compose("train", plain, return_hydra_config=True)
    OmegaConf.set_readonly(config, False)
    config.hydra.overrides.task = task
    config.hydra.sweep.dir = str(tmp_path / "sweep")
    with pytest.raises(SystemExit) as exit_:
        start_sweep(config)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(named) and err.count("\n") == 1, err
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_folder_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    from hydra import compose, initialize_config_dir

    from .conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = compose("train", ["logger=none"], return_hydra_config=True)
    OmegaConf.set_readonly(config, False)
    config.hydra.overrides.task = ["model.depth=1,2"]
    a_file = tmp_path / "sweep"
    a_file.write_text("")
    config.hydra.sweep.dir = str(a_file)
    with pytest.raises(SystemExit) as exit_:
        start_sweep(config)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        f"error: hydra.sweep.dir='{a_file}' is not allowed: a folder that can be made "
        f"({a_file} is a file, not a folder)\n"
    )


def test_a_progress_line_shortens_a_searched_float():
    state = {"total": 3, "swept": ["model.lr"], "started": 0.0}
    record = {"status": "ok", "val_loss": 0.5, "seconds": 1.0}
    assert "lr=0.08459 " in progress._line(state, 1, [], ["model.lr=0.08459126528049378"], record)


@pytest.mark.parametrize("search, kind", [(False, "search"), (True, "grid")])
def test_a_kind_other_than_its_sweepers_is_refused_in_one_line(tmp_path, capsys, search, kind):
    from hydra import compose, initialize_config_dir

    from .conftest import CONF

    chosen = ["hparams_search=bayes"] if search else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = compose("train", [*chosen, f"hydra.sweeper.kind={kind}"], return_hydra_config=True)
    OmegaConf.set_readonly(config, False)
    config.hydra.sweep.dir = str(tmp_path / "sweep")
    with pytest.raises(SystemExit) as exit_:
        start_sweep(config)
    own = "grid" if kind == "search" else "search"
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        f"error: hydra.sweeper.kind='{kind}' is not allowed: {own} (its sweeper's)\n"
    )
    assert not (tmp_path / "sweep").exists()
