"""hydra/launcher=slurm|pbs|sge|lsf without a cluster: the launcher's keys become each batch
system's directives in the worker's job script (dask-jobqueue's own), and a scheduler that
cannot start is refused in one line."""

import subprocess

import pytest

from src.sweep.cluster import cluster_class, cluster_options, worker_lifetime_s

from .conftest import ROOT, TINY
from .test_launchers import ENV, sweep_cmd

SETTINGS = {
    "folder": "/sweep/.cluster", "job_extra_directives": ["--qos=short"], "gpus_per_node": 0,
    "cpus_per_task": 2, "mem_gb": 4, "timeout_min": 90, "partition": "cpu", "account": "lab",
    "job_script_prologue": ["module load cuda"], "python": "/opt/venv/bin/python",
    "interface": None, "death_timeout_s": 60, "port": 0, "dashboard": None,
}  # fmt: skip


def job_script(scheduler: str, **settings) -> str:
    options = cluster_options({**SETTINGS, "scheduler": scheduler, **settings})
    for scheduler_only in ("scheduler_options", "security", "shared_temp_directory"):
        options.pop(scheduler_only)
    return cluster_class(scheduler).job_cls("tcp://host:1", name="w", **options).job_script()


@pytest.mark.parametrize(
    "scheduler, directives",
    [
        ("slurm", ["#SBATCH -p cpu", "#SBATCH -A lab", "#SBATCH -t 01:30:00", "--qos=short"]),
        ("pbs", ["#PBS -q cpu", "#PBS -A lab", "#PBS -l walltime=01:30:00"]),
        ("sge", ["#$ -q cpu", "#$ -P lab", "#$ -l h_rt=01:30:00"]),
        ("lsf", ["#BSUB -q cpu", '#BSUB -P "lab"', "#BSUB -W 01:30"]),
    ],
)
def test_each_batch_system_gets_the_launchers_settings(scheduler, directives):
    script = job_script(scheduler)
    for directive in directives:
        assert directive in script, script
    assert "module load cuda" in script and "/opt/venv/bin/python -m distributed" in script
    assert "--death-timeout 60" in script


def test_a_gpu_is_asked_for_on_slurm():
    assert "#SBATCH --gres=gpu:1" in job_script("slurm", gpus_per_node=1)


def test_a_worker_retires_before_its_wall_time_whatever_its_length():
    assert worker_lifetime_s(1) == 40  # 20 s at least for its start and its retirement
    assert worker_lifetime_s(10) == 540  # a tenth
    assert worker_lifetime_s(24 * 60) == 24 * 3600 - 300  # 5 min at most


def test_an_interface_this_machine_lacks_is_refused_in_one_line(tmp_path):
    cmd = sweep_cmd(tmp_path / "s", "hydra/launcher=slurm", "hydra.launcher.interface=nope0",
                    "model.depth=1", "model.width=3", "seed=0", "logger=none", *TINY)  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: hydra.launcher.interface: the scheduler cannot start")
    assert "nope0" in line
