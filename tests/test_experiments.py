"""Studies kept as configs: `experiment=<name>` runs the same jobs as its command-line form."""

import pytest
from hydra import compose, initialize_config_dir

from hydra_plugins.stacked_sweepers.grid import SeedStackingSweeper

from .conftest import CONF

CARD = ["model.depth=0,1,2,3,5,10,20", "model.width=1,2,3,5,10,20", "seed=range(6)"]


def _jobs(*overrides: str, arguments: tuple[str, ...] = ()) -> list[list[str]]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        sweeper = compose(
            "train", overrides=list(overrides), return_hydra_config=True
        ).hydra.sweeper
    found = SeedStackingSweeper(params=dict(sweeper.params or {})).job_batches(list(arguments))
    return [job for batch in found for job in batch]


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
