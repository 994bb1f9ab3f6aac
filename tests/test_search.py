"""The Bayesian search (hparams_search=bayes, hydra_plugins/stacked_sweepers/optuna_sweeper.py): its
space, its refusals, the ask-and-tell loop over stacked trials (with a launcher that trains
nothing), and real searches: resume after kill -9, SQLite storage, pruning, the dashboard."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf, open_dict
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hydra_plugins.stacked_sweepers.optuna_sweeper import StackedSearchSweeper, trial_outcome
from src.report.study import load_study, write_search_report
from src.run.files import write_json_atomic
from src.run.training import train
from src.sweep.runs import report_run
from src.sweep.space import check_search_space, study_storage

from .conftest import CONF, ROOT, start_sweep, wandb_inspect
from .test_results import job_record


@pytest.fixture(autouse=True)
def _no_stale_log_handlers(monkeypatch):
    # An earlier test's in-process Hydra app may leave the root logger writing to a stream
    # pytest has closed since; the sweeper's log lines would then print a logging error.
    import logging

    monkeypatch.setattr(logging.getLogger(), "handlers", [])


SMALL = ["data.n_train=200", "data.n_val=100", "data.n_test=100", "logger=none"]


def search_cfg(*overrides: str, sweep_dir: Path | None = None):
    """The search's master config, as the sweeper sees it (hydra node included): composed
    without the sweeps, which a multirun leaves to its sweeper."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    plain = [o.input_line for o in parsed if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["hparams_search=bayes", *plain], return_hydra_config=True)
    OmegaConf.set_readonly(cfg, False)
    with open_dict(cfg):
        cfg.hydra.overrides.task = [o for o in overrides if not o.startswith("hydra.")]
        if sweep_dir is not None:
            cfg.hydra.sweep.dir = str(sweep_dir)
    return cfg


def sweeper_of(cfg) -> StackedSearchSweeper:
    settings = OmegaConf.to_container(cfg.hydra.sweeper)
    settings.pop("_target_")
    sweeper = StackedSearchSweeper(**settings)
    sweeper.config = cfg
    return sweeper


def test_the_space_composes_as_the_report_specifies():
    cfg = search_cfg()
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("StackedSearchSweeper")
    assert sweeper.direction == "minimize" and sweeper.n_trials == 30
    assert sweeper.sampler.name == "tpe" and sweeper.sampler.seed == 0 and sweeper.pruner is None
    assert cfg.trainer.max_epochs == 50
    space, fixed, seeds = sweeper_of(cfg).space([])
    assert space == {
        "model.depth": CategoricalDistribution([1, 2, 3, 5]),
        "model.width": CategoricalDistribution([5, 10, 20, 30]),
        "model.lr": FloatDistribution(0.001, 0.1, log=True),
        "data.batch_size": CategoricalDistribution([32, 64, 128]),
    }
    assert fixed == [] and seeds == ["0", "1", "2"]  # seed is each trial's stack, not a dimension
    check_search_space(cfg)  # the default space passes its own check


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ("model.width=choice(4,8)", "model.width", CategoricalDistribution([4, 8])),
        ("model.width=4,8,16", "model.width", CategoricalDistribution([4, 8, 16])),
        ("model.width=range(2,10,2)", "model.width", IntDistribution(2, 8, step=2)),
        ("model.lr=interval(0.1,0.5)", "model.lr", FloatDistribution(0.1, 0.5)),
        ("model.lr=tag(log,interval(1e-4,1))", "model.lr", FloatDistribution(1e-4, 1, log=True)),
        ("model.width=tag(int,interval(2,64))", "model.width", IntDistribution(2, 64)),
        ("model.activation=choice(tanh,relu)", "model.activation",
         CategoricalDistribution(["tanh", "relu"])),
    ],
)  # fmt: skip
def test_each_kind_of_sweep_is_its_distribution_and_the_command_line_wins(override, key, expected):
    cfg = search_cfg(override, "model.depth=3", "seed=5")
    space, fixed, seeds = sweeper_of(cfg).space([override, "model.depth=3", "seed=5"])
    assert space[key] == expected
    assert "model.depth" not in space and fixed == ["model.depth=3"]  # a fixed value leaves
    assert seeds == ["5"]  # one seed per trial


def refusal(cfg, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        start_sweep(cfg)
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides, named",
    [
        (["model.dpth=choice(1,2)"], "model.dpth="),
        (["params:model.dpth=choice(1,2)"], "hydra.sweeper.params.model.dpth="),
        (["params:model.depth=choice()"], "hydra.sweeper.params.model.depth="),
        (["params:model.lr=tag(log, interval(0, 0.1))"], "hydra.sweeper.params.model.lr="),
        (["model.lr=tag(log,interval(0,0.1))"], "model.lr="),
        (["model.lr=tag(log,interval(-1,0.1))"], "model.lr="),
        (["model.lr=interval(0.1,0.01)"], "model.lr="),
        (["model.lr=interval(0.1,0.1)"], "model.lr="),
        (["hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0"),
        (["hydra.sweeper.n_jobs=0"], "hydra.sweeper.n_jobs=0"),
        (["hydra.sweeper.sampler.name=annealing"], "hydra.sweeper.sampler.name='annealing'"),
        (["hydra.sweeper.pruner=mediam"], "hydra.sweeper.pruner='mediam'"),
        (["hydra.sweeper.direction=down"], "hydra.sweeper.direction='down'"),
        (["hydra.sweeper.storage=nosuchdb://x/y"], "hydra.sweeper.storage="),
        (["seed=1,1,2"], "seed="),
        (["seed=0,4294967296"], "seed=4294967296 is not allowed: an integer from 0 to 2**32-1"),
        (["hydra.sweeper.sampler.seed=4294967296"], "hydra.sweeper.sampler.seed=4294967296"),
        ([f"hydra.sweeper.n_trials={2**70}"], f"hydra.sweeper.n_trials={2**70}"),
    ],
)
def test_a_bad_search_is_refused_in_one_line_before_any_trial(tmp_path, capsys, overrides, named):
    # "params:" entries are written in hydra.sweeper.params, as a config file would.
    given = [o for o in overrides if not o.startswith("params:")]
    cfg = search_cfg(*given, sweep_dir=tmp_path / "s")
    for entry in overrides:
        if entry.startswith("params:"):
            key, value = entry.removeprefix("params:").split("=", 1)
            with open_dict(cfg):
                cfg.hydra.sweeper.params[key] = value
    code, err = refusal(cfg, capsys)
    assert code == 2 and err.startswith(f"error: {named}") and err.count("\n") == 1, err
    assert "is not allowed" in err
    assert not (tmp_path / "s").exists()  # nothing written: no trial ran


@pytest.mark.parametrize("storage", ["sqlite:///{sweep}/bayes.db", "{sweep}/study/bayes.journal"])
def test_a_study_file_in_the_sweep_folder_still_to_be_made_gets_the_folder(tmp_path, storage):
    sweep = tmp_path / "new" / "sweep"
    storage = storage.format(sweep=sweep)
    cfg = search_cfg(
        f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=3", sweep_dir=sweep
    )
    check_search_space(cfg)  # what the sweep checks before its first job: the storage opens
    sweeper = sweeper_of(cfg)
    sweeper.launcher = FakeLauncher(sweep)
    sweeper.sweep(list(cfg.hydra.overrides.task))
    study = optuna.load_study(study_name="bayes", storage=study_storage(storage, sweep))
    assert len(study.trials) == 3 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert Path(storage.removeprefix("sqlite:///")).is_file()
    assert not (sweep / "study.journal").exists()


def test_a_storage_that_still_cannot_open_is_refused_in_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    storage = f"sqlite:///{a_file}/bayes.db"  # its folder cannot be made: a file is there
    cfg = search_cfg(f"hydra.sweeper.storage={storage}", sweep_dir=tmp_path / "sweep")
    code, err = refusal(cfg, capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: hydra.sweeper.storage='{storage}' is not allowed: an Optuna")


class FakeLauncher:
    """Runs no training: writes each trial's seeds' metrics.json with val_loss a function of
    the parameters, as a stacked job would, and records the batches it was handed."""

    def __init__(self, sweep_dir: Path, outcome=None):
        self.sweep_dir, self.batches, self.outcome = sweep_dir, [], outcome or (lambda p, s: "ok")

    def launch(self, jobs, initial_job_idx):
        self.batches.append((initial_job_idx, [list(j) for j in jobs]))
        results = []
        for n, job in enumerate(jobs, start=initial_job_idx):
            params = dict(o.split("=", 1) for o in job if not o.startswith("++"))
            seeds = json.loads(next(o for o in job if o.startswith("++seeds=")).split("=", 1)[1])
            out = self.sweep_dir / f"trial={n}"
            for seed in seeds:
                status = self.outcome(params, seed)
                loss = float(params["model.lr"]) * (1 + seed)
                record = job_record(status, loss=loss)
                if status == "failed":
                    record = {"status": "failed", "error": "a bad value"}
                (out / f"seed={seed}").mkdir(parents=True)
                write_json_atomic(out / f"seed={seed}" / "metrics.json", record)
            hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(out)}}})
            results.append(
                JobReturn(overrides=job, hydra_cfg=hydra_cfg, status=JobStatus.COMPLETED)
            )
        return results


def fake_search(tmp_path, *overrides, outcome=None):
    sweep = tmp_path / "sweep"
    cfg = search_cfg("hydra.sweeper.n_trials=5", *overrides, sweep_dir=sweep)
    sweeper = sweeper_of(cfg)
    sweeper.launcher = FakeLauncher(sweep, outcome)
    sweeper.sweep(list(cfg.hydra.overrides.task))
    storage = study_storage(None, sweep)
    return sweeper, optuna.load_study(study_name="bayes", storage=storage)


def test_each_trial_is_one_job_of_its_seeds_scored_by_their_mean(tmp_path):
    sweeper, study = fake_search(tmp_path, "hydra.sweeper.n_jobs=2")
    # n_trials=5, two at a time: batches of 2, 2, 1, each launched as its trials' numbers.
    assert [(first, len(jobs)) for first, jobs in sweeper.launcher.batches] == [
        (0, 2),
        (2, 2),
        (4, 1),
    ]
    assert all(job[-1] == "++seeds=[0,1,2]" for _, jobs in sweeper.launcher.batches for job in jobs)
    first_pair = [job for job in sweeper.launcher.batches[0][1]]
    assert first_pair[0] != first_pair[1]  # two trials asked at once differ
    assert len(study.trials) == 5
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        folder = tmp_path / "sweep" / f"trial={trial.number}"
        written = {
            str(s): json.loads((folder / f"seed={s}" / "metrics.json").read_text())["val_loss"]
            for s in (0, 1, 2)
        }
        assert trial.user_attrs["seed_values"] == written
        assert trial.value == pytest.approx(statistics.fmean(written.values()))
    best = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert best.best_value == pytest.approx(min(t.value for t in study.trials))


def test_a_failed_seed_fails_the_trial_a_diverged_one_makes_it_the_worst(tmp_path):
    def outcome(params, seed):
        depth = int(params["model.depth"])
        return {1: "failed", 5: "diverged"}.get(depth, "ok") if seed == 1 else "ok"

    _, study = fake_search(tmp_path, "hydra.sweeper.n_trials=15", "model.depth=choice(1,2,5)",
                           "hydra.sweeper.sampler.name=random",
                           outcome=outcome)  # fmt: skip
    by_depth = {}
    for t in study.trials:
        by_depth.setdefault(t.params["model.depth"], []).append(t)
    assert set(by_depth) == {1, 2, 5} and len(study.trials) == 15  # the search went on
    assert all(
        t.state == TrialState.FAIL and "seed=1" in t.user_attrs["error"] for t in by_depth[1]
    )
    assert all(t.state == TrialState.COMPLETE and t.value == math.inf for t in by_depth[5])
    assert all(t.state == TrialState.COMPLETE and math.isfinite(t.value) for t in by_depth[2])


def test_a_rerun_with_another_space_is_refused_in_one_line(tmp_path, capsys):
    fake_search(tmp_path)
    cfg = search_cfg("model.width=choice(5,10)", sweep_dir=tmp_path / "sweep")
    sweeper = sweeper_of(cfg)
    sweeper.launcher = FakeLauncher(tmp_path / "sweep")
    with pytest.raises(SystemExit) as exit_:
        sweeper.sweep(["model.width=choice(5,10)"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "model.width" in err, err
    assert sweeper.launcher.batches == []


def test_a_full_disk_is_not_a_failed_trial_but_ends_the_search(tmp_path):
    class FullDisk(FakeLauncher):
        def launch(self, jobs, initial_job_idx):
            raise OSError(errno.ENOSPC, "No space left on device")

    sweep = tmp_path / "sweep"
    cfg = search_cfg("hydra.sweeper.n_trials=3", sweep_dir=sweep)
    sweeper = sweeper_of(cfg)
    sweeper.launcher = FullDisk(sweep)
    trials = [SimpleNamespace(number=0)]
    with pytest.raises(OSError, match="No space left"):  # on to stop_on_full_disk
        sweeper.launch(trials, [["model.lr=0.1"]])
    failed = JobReturn(status=JobStatus.FAILED, overrides=[])
    failed.return_value = OSError(errno.EDQUOT, "Disk quota exceeded")
    with pytest.raises(OSError, match="quota"):
        trial_outcome(failed, [0])
    failed.return_value = ValueError("a bug")
    assert trial_outcome(failed, [0])["error"] == "its job raised ValueError('a bug')"


def test_a_journal_whose_last_line_was_torn_is_cut_and_the_search_resumes(tmp_path, caplog):
    fake_search(tmp_path, "hydra.sweeper.n_trials=3")
    journal = tmp_path / "sweep" / "study.journal"
    whole = journal.read_bytes()
    last = whole[:-1].rsplit(b"\n", 1)[-1]
    torn = last[: len(last) // 2]  # a crash half way through writing a line
    journal.write_bytes(whole + torn)
    sweeper, study = fake_search(tmp_path, "hydra.sweeper.n_trials=3")
    assert journal.read_bytes().startswith(whole) and journal.read_bytes().endswith(b"\n")
    assert (tmp_path / "sweep" / "study.journal.torn-1").read_bytes() == torn
    (line,) = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
    assert "study.journal.torn-1" in line and "\n" not in line
    # resumed: the journal reads whole, and the study grew by a trial with a complete line
    sweeper.n_trials = 4
    sweeper.sweep(list(sweeper.config.hydra.overrides.task))
    study = optuna.load_study(study_name="bayes", storage=study_storage(None, tmp_path / "sweep"))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert journal.read_bytes().startswith(whole)
    assert all(json.loads(line) for line in journal.read_bytes().splitlines())


def run_search(sweep: Path, *overrides: str, wait_for: Path | None = None, timeout=300):
    """`python -m src.train -m hparams_search=bayes ...` into `sweep`; with `wait_for`, killed
    with SIGKILL (its process group, as a scheduler would) once that file exists."""
    command = [sys.executable, "-m", "src.train", "-m", "hparams_search=bayes", *SMALL,
               "hydra/launcher=basic", f"hydra.sweep.dir={sweep}", *overrides]  # fmt: skip
    if wait_for is None:
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not wait_for.exists():
        assert process.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline, f"{wait_for} never appeared"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return None


def finished_files(sweep: Path) -> dict[Path, tuple[int, bytes]]:
    return {
        p: (p.stat().st_mtime_ns, p.read_bytes())
        for p in sweep.rglob("metrics.json")
        if json.loads(p.read_text())["status"] == "ok"
    }


def test_a_killed_search_resumes_to_n_trials_without_rewriting_a_finished_trial(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["hydra.sweeper.n_trials=4", "trainer.max_epochs=15", "seed=range(2)", "logger=wandb"]
    run_search(sweep, *args, wait_for=sweep / "trial=1" / "seed=1" / "metrics.json")
    before = finished_files(sweep)
    assert before, "no trial had finished when the search was killed"
    done = run_search(sweep, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    study = load_study(sweep)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 4
    for trial in study.trials:
        if trial.state == TrialState.FAIL:  # left running by the kill: closed, asked again
            assert "error" not in trial.user_attrs
            retried = [t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]
            if len(trial.params) == 4:  # not killed while it was being asked
                assert len(retried) == 1 and retried[0].params == trial.params
    after = finished_files(sweep)
    assert all(after[p] == before[p] for p in before)  # not one finished file rewritten
    assert len(after) == 4 * 2
    # <sweep>/wandb/: one run per finished seed and the report's, none of a trial cut short
    runs = {p.name.split("-", 3)[-1] for p in (sweep / "wandb").glob("offline-run-*")}
    finished = {json.loads(p.read_text())["wandb_id"] for p in after}
    assert runs == finished | {report_run(sweep).id}


def test_a_search_on_sqlite_storage_writes_its_report_and_its_best_trial_retrains(
    tmp_path, make_cfg
):
    sweep, db = tmp_path / "sweep", tmp_path / "bayes.db"
    done = run_search(
        sweep,
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=2",
        f"hydra.sweeper.storage=sqlite:///{db}",
        "model.depth=choice(-1,2)",  # -1 is refused by the job: a failed trial, the search goes on
        "logger=wandb",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # finished, and says that some runs failed
    assert db.exists() and not (sweep / "study.journal").exists()
    study = optuna.load_study(study_name="bayes", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
    states = {t.params["model.depth"]: t.state for t in study.trials}
    assert states.get(-1, TrialState.FAIL) == TrialState.FAIL
    report = write_search_report(sweep)
    text = (report / "best_trial.txt").read_text()
    if TrialState.COMPLETE not in states.values():
        pytest.skip("the sampler tried depth=-1 only")
    command = shlex.split(text.splitlines()[-1])
    assert command[:3] == ["python", "-m", "src.train"] and command[-1].startswith("seeds=[")
    overrides = [o for o in command[3:] if not o.startswith(("logger=", "seeds=", "hparams"))]
    metrics = train(make_cfg(*overrides, "seed=0", tiny=False))
    assert metrics["val_loss"] == pytest.approx(study.best_trial.user_attrs["seed_values"]["0"])
    # Every seed of every trial a wandb run in <sweep>/wandb/, grouped by its trial, and the
    # report's: read back by wandb's own reader.
    runs = {i["run_id"]: i for i in map(wandb_inspect, (sweep / "wandb").glob("offline-run-*"))}
    records = {p.parent.relative_to(sweep).as_posix(): json.loads(p.read_text())
               for p in sweep.glob("trial=*/seed=*/metrics.json")}  # fmt: skip
    named = {r["wandb_id"] for r in records.values() if "wandb_id" in r}
    assert set(runs) == named | {report_run(sweep).id}
    for trial in study.trials:
        if trial.state != TrialState.COMPLETE:
            continue
        for seed in (0, 1, 2):
            metrics = records[f"trial={trial.number}/seed={seed}"]
            run_id = rf"trial={trial.number}-seed={seed}-[a-z2-7]{{8}}"
            assert re.fullmatch(run_id, metrics["wandb_id"])
            info = runs[metrics["wandb_id"]]
            group = f"{sweep.parent.name}/{sweep.name}/trial={trial.number}"
            assert info["group"] == group and info["display_name"] == f"{group}/seed={seed}"
            assert info["job_type"] == "train" and info["exit_code"] == 0
            assert info["config"]["model"]["depth"] == trial.params["model.depth"]
            assert info["config"]["seed"] == seed
            assert info["summary"]["val_loss"] == pytest.approx(metrics["val_loss"])
    page = (report / "index.html").read_text()
    assert "<h1>Search report:" in page and "Grid report" not in page and "± nan" not in page


def test_pruning_stops_trials_and_records_them_as_pruned(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_search(
        sweep,
        "hydra.sweeper.n_trials=10",
        "hydra.sweeper.pruner=median",
        "+hydra.sweeper.pruner_args.n_startup_trials=2",
        "trainer.max_epochs=8",
        "seed=0",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    study = load_study(sweep)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, [t.state for t in study.trials]
    results = (sweep / "results.csv").read_text()
    assert results.count(",pruned,") == len(pruned)
    for trial in pruned:  # stopped before the last epoch, its values in the study
        record = json.loads(
            (sweep / f"trial={trial.number}" / "seed=0" / "metrics.json").read_text()
        )
        assert record["status"] == "pruned" and record["epochs"] < 8
        assert sorted(trial.intermediate_values) == list(range(record["epochs"]))
    assert "pruned" in done.stdout + done.stderr  # counted at the end


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_dashboard_serves_the_study_journal_over_http(tmp_path):
    _, study = fake_search(tmp_path)
    port = free_port()
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    server = subprocess.Popen(
        [str(dashboard), str(tmp_path / "sweep" / "study.journal"), "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None:
            assert server.poll() is None, "optuna-dashboard exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    studies = json.load(r)["study_summaries"]
            except OSError:
                assert time.monotonic() < deadline, "optuna-dashboard never answered"
                time.sleep(0.2)
        (summary,) = studies
        assert summary["study_name"] == "bayes"
        url = f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}"
        with urllib.request.urlopen(url, timeout=10) as r:
            served = json.load(r)["trials"]
        assert [t["values"][0] for t in served] == pytest.approx([t.value for t in study.trials])
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_search_views_show_the_trials_values(tmp_path):
    import numpy as np

    from src.report.study import curves_figure, importance_figure, optuna_figure

    _, study = fake_search(tmp_path, "hydra.sweeper.n_trials=6")
    values = [t.value for t in study.trials]
    history = optuna_figure("plot_optimization_history", study).axes[0]
    drawn = history.collections[0].get_offsets()[:, 1]
    assert list(drawn) == pytest.approx(values)  # one point per trial, at its value

    left, right = importance_figure(study).axes[:2]
    names = [t.get_text() for t in left.get_yticklabels()]
    importances = optuna.importance.get_param_importances(study)
    assert [b.get_width() for b in left.patches] == pytest.approx([importances[n] for n in names])
    for name, bar in zip(names, right.patches):  # the correlation, as computed here
        dist = study.trials[0].distributions[name]
        column = [t.params[name] for t in study.trials]
        if hasattr(dist, "choices"):
            column = [dist.choices.index(v) for v in column]
        elif dist.log:
            column = np.log10(column)
        expected = np.corrcoef(column, values)[0, 1] if np.ptp(column) > 0 else 0.0
        assert bar.get_width() == pytest.approx(expected)

    val_panel = curves_figure(tmp_path / "sweep", study).axes[1]
    best = min(study.trials, key=lambda t: t.value)
    folder = tmp_path / "sweep" / f"trial={best.number}"
    histories = [json.loads((folder / f"seed={s}" / "metrics.json").read_text())["history"]
                 for s in (0, 1, 2)]  # fmt: skip
    mean = np.mean([[e["val_loss"] for e in h] for h in histories], axis=0)
    assert val_panel.lines[-1].get_ydata() == pytest.approx(mean)  # the best drawn last


def test_a_search_whose_trials_all_failed_still_reports(tmp_path, capsys):
    from src.report.study import main

    _, study = fake_search(tmp_path, outcome=lambda params, seed: "failed")
    assert {t.state for t in study.trials} == {TrialState.FAIL}
    assert main([str(tmp_path / "sweep")]) == 0
    assert "no trial has completed" in capsys.readouterr().out
    page = (tmp_path / "sweep" / "report" / "index.html").read_text()
    assert "5 fail" in page and not list((tmp_path / "sweep" / "report").glob("*.png"))


def test_a_grid_sweep_is_not_a_search(tmp_path, capsys):
    from src.report.study import main

    sweep = tmp_path / "grid"
    sweep.mkdir()
    grid = {"hydra": {"sweeper": {"_target_": "x.SeedStackingSweeper", "kind": "grid"}}}
    OmegaConf.save(OmegaConf.create(grid), sweep / "multirun.yaml")
    assert main([str(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a search (its sweeper's kind is grid)" in err


def test_python_m_src_report_draws_a_search_its_own_report(tmp_path, capsys):
    from src.report.__main__ import main

    fake_search(tmp_path, outcome=lambda params, seed: "failed")  # its jobs write no .hydra/
    assert main([str(tmp_path / "sweep")]) == 0  # as the callback, by the sweeper it names
    best = (tmp_path / "sweep" / "report" / "best_trial.txt").read_text()
    assert capsys.readouterr().out.startswith(best)
    page = (tmp_path / "sweep" / "report" / "index.html").read_text()
    assert "<h1>Search report: " in page


def test_a_trial_left_running_is_asked_again_unless_it_was_cut_short_while_asked(tmp_path):
    sweeper, study = fake_search(tmp_path, "hydra.sweeper.n_trials=2")
    space = sweeper.space([])[0]  # what the killed sweep was asking for
    whole, partial = study.ask(space), study.ask({"model.depth": space["model.depth"]})
    _, study = fake_search(tmp_path, "hydra.sweeper.n_trials=4")  # the rerun
    by_number = {t.number: t for t in study.trials}
    assert by_number[whole.number].state == by_number[partial.number].state == TrialState.FAIL
    retried = [t for t in study.trials if "retry_of" in t.user_attrs]
    assert [t.user_attrs["retry_of"] for t in retried] == [whole.number]
    assert retried[0].params == whole.params
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 4
