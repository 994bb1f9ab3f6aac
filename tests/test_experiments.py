"""Studies kept as configs: `experiment=<name>` runs the same jobs as its command-line form."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hydra_plugins.stacked_sweepers.grid_sweeper import SeedStackingSweeper
from src.errors import ConfigError
from src.sweep.preflight import sweep_grids

from .conftest import CONF, planned

CARD = ["model.depth=0,1,2,3,5,10,20", "model.width=1,2,3,5,10,20", "seed=range(6)"]


def _jobs(*overrides: str, arguments: tuple[str, ...] = ()) -> list[list[str]]:
    sweeper = _config(*overrides).hydra.sweeper
    grids = sweeper.get("grids")
    found = SeedStackingSweeper(params=dict(sweeper.params or {}), grids=grids).job_batches(
        list(arguments)
    )
    return [job for batch in found for job in batch]


def _config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    "experiment, command_line",
    [("depth_width", CARD), ("residual", [*CARD, "model.residual=false,true"])],
)
def test_an_experiment_launches_the_jobs_of_its_command_line_form(experiment, command_line):
    jobs = _jobs(f"experiment={experiment}")
    assert jobs == _jobs(arguments=tuple(command_line))
    assert len(jobs) == 42 * (2 if experiment == "residual" else 1)  # the seeds of each stacked


def test_the_command_line_still_wins_over_an_experiments_sweep():
    jobs = _jobs("experiment=depth_width", arguments=("model.width=10",))
    assert len(jobs) == 7 and all("model.width=10" in job for job in jobs)


def test_the_claims_experiment_sweeps_the_union_of_its_grids_each_job_once():
    jobs = _jobs("experiment=claims")
    assert len(jobs) == 7 * 6 * 2 + 4 * 2 * 2 * 3  # the grid x tanh, relu; 4 configurations x 12
    assert len({frozenset(job) for job in jobs}) == len(jobs)
    assert all(len(job) == 7 and "++seeds=[0,1,2,3,4,5]" in job for job in jobs)  # every key
    long = [job for job in jobs if "trainer.max_epochs=100" in job]
    assert {
        tuple(o for o in j if o.startswith(("model.depth=", "model.width="))) for j in long
    } == {
        ("model.depth=2", "model.width=5"),
        ("model.depth=2", "model.width=10"),
        ("model.depth=3", "model.width=10"),
        ("model.depth=5", "model.width=20"),
    }
    config = _config("experiment=claims")
    OmegaConf.update(config, "hydra.overrides.task", ["experiment=claims"], force_add=True)
    total, swept = planned(config)
    assert total == len(jobs) * 6 and {"trainer.max_epochs", "model.optimizer"} <= set(swept)


def test_grids_that_share_a_job_run_it_once_and_the_command_line_wins_in_each():
    grids = [{"model.depth": "1,2", "model.lr": "0.1"}, {"model.depth": "2,3", "model.lr": "0.1"}]
    sweeper = SeedStackingSweeper(params={"seed": "0,1"}, grids=grids)
    jobs = [job for batch in sweeper.job_batches([]) for job in batch]
    assert [job[1] for job in jobs] == ["model.depth=1", "model.depth=2", "model.depth=3"]
    narrowed = [job for batch in sweeper.job_batches(["model.depth=2"]) for job in batch]
    assert narrowed == [["++seeds=[0,1]", "model.depth=2", "model.lr=0.1"]]


@pytest.mark.parametrize("grids", ["model.depth=1", [], ["model.depth=1"], {"a": "1"}])
def test_grids_that_are_no_list_of_mappings_are_refused_naming_the_key(grids):
    with pytest.raises(ConfigError, match="hydra.sweeper.grids=.* is not allowed: a list of"):
        sweep_grids(grids)
