"""Hydra's own test suites for launcher plugins, run against hydra/launcher=dask_slurm (the
registered config, as any Hydra app would use it) on the one-node SLURM cluster, with the
scheduler on the loopback interface: the launcher assumes nothing of this project's config."""

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

from hydra_plugins.stacked_sweepers.cluster import JobqueueLauncher

pytestmark = pytest.mark.slurm

ON_LOOPBACK = ["hydra.launcher.interface=lo", "hydra.launcher.workers=2"]


def test_discovery():
    assert JobqueueLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides", [("dask_slurm", ON_LOOPBACK)])
class TestJobqueueLauncher(LauncherTestSuite):
    pass


@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        (
            {
                "defaults": [
                    {"hydra/launcher": "dask_slurm"},
                    {"hydra/hydra_logging": "hydra_debug"},
                    {"hydra/job_logging": "disabled"},
                ],
                "hydra": {"launcher": {"interface": "lo", "workers": 2, "timeout_min": 5}},
            },
            ["-m"],
        )
    ],
)
class TestJobqueueLauncherIntegration(IntegrationTestSuite):
    pass
