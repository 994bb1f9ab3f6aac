"""A sweep's wandb runs without training: their ids, and which runs of `<sweep>/wandb/` are
removed when (src/sweep/runs.py). The runs of real sweeps: tests/test_sweep.py,
test_search.py, test_launchers.py."""

import re

from src.run.files import write_json_atomic
from src.sweep.jobs import clear_attempt
from src.sweep.preflight import Plan, mark_unfinished, write_state
from src.sweep.progress import sweep_state
from src.sweep.runs import ID_LENGTH, report_run, run_label, seed_run

WANDB_ID = re.compile(r"[A-Za-z0-9_.=-]{1,64}")  # wandb refuses :;,#?/' and URLs others


def start_sweep(sweep, swept=("model.depth", "seed")):
    write_state(sweep, Plan("grid", "seed", "seeds", 4, list(swept)))
    return sweep


def run_id(sweep, seed_dir: str, settings: list[str], seed: int) -> str:
    return seed_run(sweep, sweep / seed_dir, settings, seed).id


def test_a_run_id_reads_as_its_settings_and_seed_and_is_the_sweeps_own(tmp_path):
    sweep = start_sweep(tmp_path / "a")
    first = run_id(sweep, "model.depth=3/seed=2", ["depth=3", "width=10"], 2)
    assert re.fullmatch(r"depth=3-width=10-seed=2-[a-z2-7]{8}", first)
    assert run_id(sweep, "model.depth=3/seed=2", ["depth=3", "width=10"], 2) == first
    other = start_sweep(tmp_path / "b")  # another sweep: other ids
    assert run_id(other, "model.depth=3/seed=2", ["depth=3", "width=10"], 2) != first
    ids = {
        run_id(sweep, f"model.depth={d}/seed={s}", [f"depth={d}"], s)
        for d in range(10)
        for s in range(10)
    }
    assert len(ids) == 100
    assert seed_run(sweep, sweep / "x/seed=0", [], 0).root == sweep  # in <sweep>/wandb/


def test_a_resumed_sweep_keeps_its_id_and_so_its_run_ids(tmp_path):
    sweep = start_sweep(tmp_path / "sweep")
    before = run_id(sweep, "a/seed=0", ["depth=1"], 0), report_run(sweep).id
    sweep_id = sweep_state(sweep)["id"]
    start_sweep(sweep)  # the rerun's main process writes the state again
    assert sweep_state(sweep)["id"] == sweep_id
    assert (run_id(sweep, "a/seed=0", ["depth=1"], 0), report_run(sweep).id) == before
    assert re.fullmatch(r"report-[a-z2-7]{8}", before[1])


def test_a_run_id_holds_only_what_wandb_takes_and_keeps_its_seed_when_cut(tmp_path):
    sweep = start_sweep(tmp_path / "sweep")
    odd = run_id(sweep, "x/seed=1", ["data=a/b", "tags=[x,y]", "name='q r'", "lr=1e-3"], 1)
    assert WANDB_ID.fullmatch(odd) and odd.startswith("data=a_b-tags=_x_y_-name=_q_r_-lr=1e-3")
    long = run_id(sweep, "y/seed=12", [f"key{i}={i * 1000}" for i in range(30)], 12)
    assert WANDB_ID.fullmatch(long) and len(long) <= ID_LENGTH
    assert re.fullmatch(r"key0=0-key1=1000-.*-seed=12-[a-z2-7]{8}", long)
    assert run_label([], 3) == "seed=3"


def make_run(sweep, run_id: str, time: str = "20260101_000000"):
    folder = sweep / "wandb" / f"offline-run-{time}-{run_id}"
    (folder / "files").mkdir(parents=True)
    return folder


def started_seed(sweep, name: str, record: dict | None = None):
    seed_dir = sweep / name
    (seed_dir / ".hydra").mkdir(parents=True)
    (seed_dir / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    if record is not None:
        write_json_atomic(seed_dir / "metrics.json", record)
    return seed_dir


def test_a_seed_trained_again_leaves_no_run_of_its_earlier_attempt(tmp_path):
    sweep = start_sweep(tmp_path / "sweep")
    seed_dir = started_seed(sweep, "a/seed=0", {"status": "failed", "error": "boom"})
    own = run_id(sweep, "a/seed=0", ["depth=1"], 0)
    attempts = [make_run(sweep, own, t) for t in ("20260101_000000", "20260101_000005")]
    kept = [make_run(sweep, run_id(sweep, "a/seed=1", ["depth=1"], 1)), make_run(sweep, "x")]
    kept.append(make_run(sweep, report_run(sweep).id))
    clear_attempt(seed_dir, sweep)
    assert not (seed_dir / "metrics.json").exists()
    assert not any(a.exists() for a in attempts) and all(k.exists() for k in kept)


def test_a_sweep_cut_short_removes_the_runs_of_the_seeds_it_was_training(tmp_path):
    sweep = start_sweep(tmp_path / "sweep")
    done = started_seed(sweep, "a/seed=0", {"status": "failed", "error": "boom"})
    cut = started_seed(sweep, "a/seed=1")
    runs = {d: make_run(sweep, run_id(sweep, d.relative_to(sweep), [], 0)) for d in (done, cut)}
    report = make_run(sweep, report_run(sweep).id)
    assert mark_unfinished(sweep, quiet=True) == [cut]
    assert not runs[cut].exists() and runs[done].exists() and report.exists()
