"""Hydra's own test suites for launcher plugins, run against hydra/launcher=dask_slurm (the
registered config, as any Hydra app would use it) on the one-node SLURM cluster, with the
scheduler on the loopback interface: the launcher assumes nothing of this project's config."""

import pytest
from hydra import version
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

from hydra_plugins.stacked_sweepers.jobqueue_launcher import JobqueueLauncher

pytestmark = pytest.mark.slurm

ON_LOOPBACK = ["hydra.launcher.interface=lo", "hydra.launcher.workers=2"]


@pytest.fixture(autouse=True)
def _hydra_version_base_unspecified():
    """The suites expect the version base an app that names none gets (1.1: a job runs in its
    output folder); importing src.train for the other tests set this process's to 1.3."""
    before = version.getbase()
    version.VersionBase.instance().setbase(version.__compat_version__)
    yield
    version.VersionBase.instance().setbase(before)


def test_discovery():
    assert JobqueueLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides", [("dask_slurm", ON_LOOPBACK)])
class TestJobqueueLauncher(LauncherTestSuite):
    pass


@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        (
            {},
            ["-m", "hydra/launcher=dask_slurm", *ON_LOOPBACK, "hydra/hydra_logging=disabled",
             "hydra/job_logging=disabled"],
        )
    ],
)  # fmt: skip
class TestJobqueueLauncherIntegration(IntegrationTestSuite):
    pass
