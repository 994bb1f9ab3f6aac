"""The Bayesian search (hparams_search=bayes): its space, its checks, a real search, the views."""

import json
import math
import shlex
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import OmegaConf, open_dict
from optuna.distributions import CategoricalDistribution, LogUniformDistribution

from src.config import ConfigError
from src.report.results import collect
from src.report.search import write_search_views
from src.run.training import train
from src.sweep.search import StartSearch, check_resume, check_search_space, search_space

from .conftest import CONF, ROOT
from .test_results import job_record

VIEWS = ["parallel_coordinates.png", "importance.png", "history.png", "trial_curves.png"]


def search_cfg(*overrides: str):
    """The search's master config, as the sweeper sees it (hydra node included)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["hparams_search=bayes", *overrides], return_hydra_config=True)
    OmegaConf.set_readonly(cfg, False)
    return cfg


def test_the_space_composes_as_the_report_specifies():
    cfg = search_cfg()
    sweeper = cfg.hydra.sweeper
    assert sweeper.direction == "minimize" and sweeper.n_trials == 30
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 0
    assert cfg.trainer.max_epochs == 50
    assert OmegaConf.to_container(cfg.hydra.sweep)["subdir"] == "trial=${hydra.job.num}"
    assert cfg.hydra.callbacks.search._target_ == "src.sweep.search.StartSearch"
    # What the Optuna sweeper builds from it:
    space, fixed = create_params_from_overrides([f"{k}={v}" for k, v in sweeper.params.items()])
    assert space == {
        "model.depth": CategoricalDistribution([1, 2, 3, 5]),
        "model.width": CategoricalDistribution([5, 10, 20, 30]),
        "model.lr": LogUniformDistribution(0.001, 0.1),
        "data.batch_size": CategoricalDistribution([32, 64, 128]),
    }
    assert not fixed
    check_search_space(cfg)  # the default space passes its own check


def test_trial_count_seed_and_space_are_overridable():
    cfg = search_cfg("hydra.sweeper.n_trials=7", "hydra.sweeper.sampler.seed=3")
    assert cfg.hydra.sweeper.n_trials == 7 and cfg.hydra.sweeper.sampler.seed == 3
    # The command line's sweeps win over the config's; a fixed value leaves the space.
    cfg.hydra.overrides.task = ["model.lr=tag(log,interval(0.0001,1))", "model.depth=3"]
    space = search_space(cfg)
    assert set(space) == {"model.width", "model.lr", "data.batch_size"}
    assert space["model.lr"][1].value().start == 0.0001


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("params", {"model.dpth": "choice(1, 2)"}, "hydra.sweeper.params.model.dpth="),
        ("params", {"model.depth": "choice()"}, "hydra.sweeper.params.model.depth="),
        ("params", {"model.depth": "range(5, 1)"}, "hydra.sweeper.params.model.depth="),
        ("params", {"model.lr": "tag(log, interval(0, 0.1))"}, "hydra.sweeper.params.model.lr="),
        ("params", {"model.lr": "interval(0.1, 0.01)"}, "hydra.sweeper.params.model.lr="),
        ("task", ["model.lr=tag(log,interval(-1,0.1))"], "model.lr="),
        ("task", ["model.widht=choice(1,2)"], "model.widht="),
        ("n_trials", 0, "hydra.sweeper.n_trials=0"),
    ],
)
def test_a_bad_search_is_refused_in_one_line_before_any_trial(tmp_path, capsys, key, value, named):
    cfg = search_cfg()
    with open_dict(cfg):
        if key == "params":
            cfg.hydra.sweeper.params.update(value)
        elif key == "task":
            cfg.hydra.overrides.task = value
        else:
            cfg.hydra.sweeper[key] = value
    cfg.hydra.sweep.dir = str(tmp_path / "sweep")
    with pytest.raises(ConfigError, match="is not allowed"):
        check_search_space(cfg)
    with pytest.raises(SystemExit) as exit_:
        StartSearch().on_multirun_start(cfg)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(f"error: {named}") and err.count("\n") == 1
    assert not (tmp_path / "sweep").exists()


def test_a_rerun_into_the_folder_must_be_the_same_search(tmp_path):
    cfg = search_cfg()
    cfg.hydra.sweep.dir = str(tmp_path)
    check_resume(cfg)  # a new folder
    OmegaConf.save(cfg, tmp_path / "multirun.yaml")
    cfg.hydra.sweeper.n_trials = 40
    check_resume(cfg)  # the same search, more trials: replays the first 30
    for key, value, reason in [
        ("sampler", {"seed": 1}, "sampler"),
        ("params", {"model.width": "choice(5, 10)"}, "params"),
        ("storage", "sqlite:///x.db", "storage"),
    ]:
        other = search_cfg()
        other.hydra.sweep.dir = str(tmp_path)
        other.hydra.sweeper = OmegaConf.merge(other.hydra.sweeper, {key: value})
        if key == "storage":
            OmegaConf.save(other, tmp_path / "multirun.yaml")
        with pytest.raises(ConfigError, match=reason):
            check_resume(other)


def test_a_small_search_runs_writes_its_views_and_its_best_trial_reruns(tmp_path, make_cfg):
    sweep = tmp_path / "sweep"
    small = ["data.n_train=200", "data.n_val=100", "data.n_test=100", "trainer.max_epochs=2"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "-m",
            "hparams_search=bayes",
            "hydra.sweeper.n_trials=4",
            "logger=none",
            "hydra/launcher=basic",  # one trial after another: no worker processes to start
            "model.depth=choice(-1,2)",  # -1 fails: a bad trial, and the search goes on
            f"hydra.sweep.dir={sweep}",
            *small,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    rows = collect(sweep)
    assert len(rows) == 4, output
    statuses = sorted(r["status"] for r in rows)
    assert "failed" in statuses and "ok" in statuses, output
    assert done.returncode == 1, output  # finished, and says that some trials failed
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    ok_losses = [r["val_loss"] for r in rows if r["status"] == "ok"]
    assert best.best_value == pytest.approx(min(ok_losses))
    assert (sweep / "multirun.yaml").exists()

    paths = write_search_views(sweep, rows, sweep / "report")
    assert [p.name for p in paths] == [*VIEWS, "best_trial.txt"]
    assert all(p.stat().st_size > 5000 for p in paths if p.suffix == ".png")
    text = (sweep / "report" / "best_trial.txt").read_text()
    command = shlex.split(text.splitlines()[-1])
    assert command[:3] == ["python", "-m", "src.train"]
    overrides = [o for o in command[3:] if not o.startswith("logger=")]
    metrics = train(make_cfg(*overrides, tiny=False))
    assert metrics["val_loss"] == pytest.approx(min(ok_losses), rel=1e-4)


def synthetic_rows(sweep):
    """Eight trials as src.results.collect gives them, with histories in the job folders."""
    rows = []
    for n in range(8):
        lr = 0.001 * 10 ** (n / 4)
        status = "diverged" if n == 6 else "failed" if n == 7 else "ok"
        loss = 0.5 / (1 + 10 * n) if status == "ok" else math.inf
        row = {"model.depth": [1, 2, 3, 5][n % 4], "model.width": [5, 30][n % 2], "model.lr": lr}
        row |= {"data.batch_size": 64, "seed": 0, "status": status, "job_dir": f"trial={n}"}
        row |= {"val_loss": None if status == "failed" else loss, "val_accuracy": 0.9}
        rows.append(row)
        if status != "failed":
            history = [
                {"epoch": e, "train_loss": loss * (3 - e), "train_accuracy": 0.9,
                 "val_loss": loss * (3 - e), "val_accuracy": 0.8 + e / 20}
                for e in range(3)
            ]  # fmt: skip
            record = {**job_record(status), "history": history}
            (sweep / f"trial={n}").mkdir(parents=True)
            (sweep / f"trial={n}" / "metrics.json").write_text(json.dumps(record))
    return rows[::-1]  # in any order


def test_views_on_a_synthetic_results_table(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    paths = write_search_views(sweep, synthetic_rows(sweep), tmp_path / "out")
    assert [p.name for p in paths] == [*VIEWS, "best_trial.txt"]
    text = (tmp_path / "out" / "best_trial.txt").read_text()
    assert text.startswith("best trial: trial=5 (val_loss=0.009804")
    assert "python -m src.train model.depth=2 model.width=30 model.lr=0.0177" in text
    assert "seed" not in text  # not swept, so not a parameter of the search
    assert capsys.readouterr().out == text  # printed too
    assert write_search_views(sweep, [], tmp_path / "none") == []
