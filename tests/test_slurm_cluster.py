"""The one-node SLURM cluster of tests/slurm_cluster.sh runs a batch job and accounts for it."""

from __future__ import annotations

import subprocess
import time

import pytest

pytestmark = pytest.mark.slurm


def slurm(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30).stdout


def test_a_batch_job_runs_and_sacct_reports_it_completed(tmp_path):
    out = tmp_path / "job.out"
    job = slurm("sbatch", "--parsable", f"--output={out}", "--time=1", "--wrap", "echo hi")
    job = job.strip().split(";")[0]  # "id" or "id;cluster"
    state, deadline = "", time.monotonic() + 60
    while time.monotonic() < deadline:
        state = slurm("sacct", "-n", "-X", "-P", "-j", job, "-o", "State").strip()
        if state and state not in ("PENDING", "RUNNING", "COMPLETING"):
            break
        time.sleep(0.2)
    assert state == "COMPLETED", f"job {job}: {state or 'not in sacct'} after 60 s"
    assert out.read_text() == "hi\n"
