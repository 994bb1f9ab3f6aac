"""No metrics.json can stop the report or a resume: what `read_metrics` makes of a record no
run writes (a number too large for a float, a nesting too deep to parse, a FIFO or a folder in
its place), and diverged runs written as strict JSON (null for a non-finite value)."""

from __future__ import annotations

import errno
import json
import math
import os
import threading
from pathlib import Path

import pytest

from src.report.results import collect
from src.run.files import read_metrics, write_json_atomic
from src.run.training import objective

from .test_results import job_record, make_sweep


def strict_json(text: str):
    """json.loads refusing NaN and Infinity, as JSON (RFC 8259) does."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def one_job(tmp_path: Path, record) -> Path:
    job = tmp_path / "job"
    job.mkdir(exist_ok=True)
    text = record if isinstance(record, str) else json.dumps(record)
    (job / "metrics.json").write_text(text)
    return job


def assert_malformed(job: Path, reason: str) -> None:
    record = read_metrics(job)
    assert record["status"] == "failed", record
    assert record["error"].startswith("malformed metrics.json: it "), record
    assert reason in record["error"], record["error"]
    assert objective(record) == math.inf


# -- non-finite values: null in the file, NaN when read, only where a run diverged ----------


def test_non_finite_values_are_written_as_null_at_any_depth(tmp_path):
    record = job_record("diverged")
    record["history"][-1]["grad_norm/layer_0"] = math.inf
    record["test_loss"] = -math.inf
    path = tmp_path / "metrics.json"
    write_json_atomic(path, record)
    saved = strict_json(path.read_text())  # no bare NaN or Infinity anywhere
    assert saved["val_loss"] is None and saved["test_loss"] is None
    last = saved["history"][-1]
    assert last["val_loss"] is None and last["train_loss"] is None
    assert last["grad_norm/layer_0"] is None
    assert saved["history"][0] == record["history"][0]  # finite values as they were
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_a_diverged_record_with_nulls_is_read_as_diverged_with_nan(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    write_json_atomic(job / "metrics.json", job_record("diverged"))
    record = read_metrics(job)
    assert record["status"] == "diverged"
    assert math.isnan(record["val_loss"]) and math.isnan(record["train_loss"])
    assert math.isnan(record["history"][-1]["val_loss"])
    assert record["history"][0]["val_loss"] > 0  # the epochs before it: finite numbers
    assert objective(record) == math.inf


def test_records_written_with_bare_nan_before_are_still_read(tmp_path):
    job = one_job(tmp_path, json.dumps(job_record("diverged")))  # allow_nan: bare NaN
    assert "NaN" in (job / "metrics.json").read_text()
    assert read_metrics(job)["status"] == "diverged"


def _diverged_with(change):
    record = job_record("diverged")
    change(record)
    return record


@pytest.mark.parametrize(
    "record, reason",
    [
        (job_record("ok") | {"val_loss": None}, "has val_loss=None, not a number"),
        (job_record("ok") | {"test_loss": math.inf}, "is ok but has test_loss=inf"),
        (job_record("pruned") | {"best_val_loss": None}, "has best_val_loss=None, not a number"),
        (job_record("diverged") | {"epochs": None}, "has epochs=None, not a number"),
        (job_record("diverged") | {"seconds": math.nan}, "is diverged but has seconds=nan"),
        (
            _diverged_with(lambda r: r["history"][1].update(val_loss=None)),  # not its last
            "has history[1]=",
        ),
        (
            _diverged_with(lambda r: r["history"][1].update(val_loss=math.nan)),
            "has history[1].val_loss=nan, not a finite number",
        ),
        (
            _diverged_with(lambda r: r["history"][-1].update(epoch=None)),
            "has history[3]=",
        ),
        (
            job_record("ok") | {"history": [{"epoch": 0, "train_loss": math.inf, "val_loss": 1}]},
            "has history[0].train_loss=inf, not a finite number",
        ),
    ],
    ids=[
        "ok with a null val_loss",
        "ok with an infinite test_loss",
        "pruned with a null",
        "diverged with a null epoch count",
        "diverged with a NaN time",
        "diverged with a null before its last epoch",
        "diverged with a NaN before its last epoch",
        "diverged with a null epoch number",
        "ok with an infinite loss in its history",
    ],
)
def test_non_finite_values_only_where_a_run_diverged(tmp_path, record, reason):
    job = one_job(tmp_path, json.dumps(record))  # NaN and Infinity as older records wrote them
    assert_malformed(job, reason)


def test_a_diverged_training_run_writes_strict_json_and_reads_back_diverged(make_cfg, tmp_path):
    from src.run.training import train

    cfg = make_cfg("model.optimizer=sgd", "model.lr=1e38", "trainer.max_epochs=5")
    metrics = train(cfg)
    assert metrics["status"] == "diverged"
    saved = strict_json((tmp_path / "run" / "metrics.json").read_text())
    assert saved["history"][-1]["train_loss"] is None
    record = read_metrics(tmp_path / "run")
    assert record["status"] == "diverged" and objective(record) == math.inf
    assert math.isnan(record["history"][-1]["train_loss"])


# -- numbers json reads but float() cannot take ----------------------------------------------

HUGE = "1" + "0" * 400  # 10**400: json makes it an int, float() raises OverflowError


def _huge_at(where: str) -> str:
    record = job_record("ok")
    if where == "top":
        record["val_loss"] = "HUGE"
    elif where == "an integer metric":
        record["n_params"] = "HUGE"
    elif where == "history":
        record["history"][2]["val_loss"] = "HUGE"
    else:
        record["history"][2]["grad_norm/layer_0"] = "HUGE"
    return json.dumps(record).replace('"HUGE"', HUGE)


@pytest.mark.parametrize(
    "where, reason",
    [
        ("top", "has val_loss=1000"),
        ("an integer metric", "has n_params=1000"),
        ("history", "has history[2].val_loss=1000"),
        ("a gradient norm", "has history[2].grad_norm/layer_0=1000"),
    ],
)
def test_a_number_too_large_for_a_float_is_a_malformed_record(tmp_path, where, reason):
    job = one_job(tmp_path, _huge_at(where))
    assert isinstance(json.loads((job / "metrics.json").read_text())["status"], str)
    assert_malformed(job, reason)
    assert "a number too large for a float" in read_metrics(job)["error"]


def test_an_integer_of_more_digits_than_python_parses_is_a_malformed_record(tmp_path):
    record = json.dumps(job_record("ok")).replace('"seconds": 1.5', '"seconds": ' + "9" * 5000)
    assert_malformed(one_job(tmp_path, record), "cannot be parsed")


def test_the_report_and_resume_get_past_such_a_record(tmp_path):
    from src.sweep.jobs import finished_metrics

    sweep = make_sweep(tmp_path / "sweep", depths=(0,), widths=(1,), seeds=(0, 1))
    good, bad = (sweep / "logger=none,model.depth=0,model.width=1" / f"seed={s}" for s in (0, 1))
    record = json.loads((bad / "metrics.json").read_text())
    record["history"][1]["train_loss"] = "HUGE"
    (bad / "metrics.json").write_text(json.dumps(record).replace('"HUGE"', HUGE))
    rows = collect(sweep)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert "history[1].train_loss" in rows[1]["error"]
    assert finished_metrics(bad) is None and finished_metrics(good) is not None


# -- files json cannot parse, or that are no files ------------------------------------------


def test_a_nesting_too_deep_to_parse_is_a_malformed_record(tmp_path):
    job = one_job(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert_malformed(job, "is nested too deeply to be parsed")


def test_a_deep_nesting_inside_a_record_is_a_malformed_record(tmp_path):
    record = job_record("ok")
    record["history"] = "DEEP"
    text = json.dumps(record).replace('"DEEP"', "[" * 900 + "]" * 900)  # parses: json's limit
    job = one_job(tmp_path, text)
    assert_malformed(job, "has history[0]=[[[[")


def _read_within(job: Path, seconds: float = 10.0):
    """read_metrics(job) in a thread: what it returned, or the test fails if it blocks."""
    found = []
    reader = threading.Thread(target=lambda: found.append(read_metrics(job)), daemon=True)
    reader.start()
    reader.join(seconds)
    assert not reader.is_alive(), "read_metrics blocked"
    return found[0]


def test_a_fifo_named_metrics_json_is_malformed_at_once(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    os.mkfifo(job / "metrics.json")  # nobody writes it: opening it to read would wait
    record = _read_within(job)
    assert record["status"] == "failed" and "it is a FIFO" in record["error"]
    assert record["error"].startswith("malformed metrics.json: it is not a regular file")


def test_a_folder_named_metrics_json_is_malformed(tmp_path):
    job = tmp_path / "job"
    (job / "metrics.json").mkdir(parents=True)
    assert_malformed(job, "is not a regular file (it is a folder)")


def test_a_link_to_a_fifo_is_malformed_too(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    os.mkfifo(tmp_path / "pipe")
    (job / "metrics.json").symlink_to(tmp_path / "pipe")
    assert "it is a FIFO" in _read_within(job)["error"]


def test_a_missing_record_is_none_and_a_link_to_nothing_is_none_too(tmp_path):
    assert read_metrics(tmp_path) is None
    (tmp_path / "metrics.json").symlink_to(tmp_path / "nowhere")
    assert read_metrics(tmp_path) is None


# -- writing -----------------------------------------------------------------------------------


def test_a_write_that_fails_leaves_the_old_record_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"status": "failed", "error": "first"})

    def full(self, text, *args, **kwargs):
        Path.write_bytes(self, text[:10].encode())  # a part of it, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError) as error:
        write_json_atomic(path, {"status": "failed", "error": "second"})
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert json.loads(path.read_text())["error"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
