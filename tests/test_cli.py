"""Every entry point answers --help with its usage and refuses a wrong argument in one line
on stderr with exit status 2; the Hydra apps answer --help with Hydra's help, and refuse a
run or sweep folder that cannot be made (a file in its place) in one line, exit 2."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src import benchmark
from src.autodiff import benchmark as autodiff_benchmark
from src.folders import OutputFolderCheck
from src.report import study
from src.report.__main__ import main as report_main
from src.run.files import unique_dir

from .conftest import ROOT

MAINS = {  # the non-Hydra entry points: python -m <module>, and their main(argv)
    "src.report": report_main,
    "src.benchmark": benchmark.main,
    "src.autodiff.benchmark": autodiff_benchmark.main,
}


def exit_code(main, argv: list[str]) -> int:
    """main(argv)'s exit status, whether it returns it or raises SystemExit."""
    try:
        return main(argv) or 0
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("module", MAINS)
def test_help_prints_the_usage(module, capsys):
    assert exit_code(MAINS[module], ["--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"usage: python -m {module} ") and err == ""


def _refusals(tmp_path):
    a_file = tmp_path / "results.csv"
    a_file.write_text("x\n")
    missing, plain, search = tmp_path / "nowhere", tmp_path / "plain", tmp_path / "search"
    plain.mkdir()
    search.mkdir()
    sweeper = {"_target_": "x.StackedSearchSweeper", "kind": "search", "study_name": "bayes",
               "storage": None}  # fmt: skip
    (search / "multirun.yaml").write_text(json.dumps({"hydra": {"sweeper": sweeper}}))
    return [
        ("src.report", [str(missing)], "is not a folder"),
        ("src.report", [str(a_file)], "is not a folder"),
        ("src.report", [str(plain)], "is not a sweep"),
        ("src.report", [], "the following arguments are required: sweep_dir"),
        ("src.report", [str(plain), "--seed", "one"], "argument --seed: invalid int value"),
        ("src.report", [str(search), "extra"], "unrecognized arguments: extra"),
        ("src.report", [str(search), "--rows", "model.depth"], "--rows: a grid's report's"),
        ("src.report.study", [str(missing)], "is not a folder"),  # a search's page, called alone
        ("src.report.study", [str(a_file)], "is not a folder"),
        ("src.report.study", [str(plain), "extra"], "unrecognized arguments: extra"),
        ("src.benchmark", ["--overhed"], "unrecognized arguments: --overhed"),
        ("src.benchmark", ["depth"], "'depth' is not a Hydra override"),
        ("src.benchmark", ["model.depth=2"], "the benchmark sweeps model.depth"),
        ("src.autodiff.benchmark", ["overfit"], "unrecognized arguments: overfit"),
    ]


def test_a_wrong_argument_is_refused_in_one_line_with_status_2(tmp_path, capsys):
    mains = {**MAINS, "src.report.study": study.main}
    for module, argv, message in _refusals(tmp_path):
        assert exit_code(mains[module], argv) == 2, (module, argv)
        out, err = capsys.readouterr()
        assert err.startswith("error: ") and err.count("\n") == 1, (module, argv, err)
        assert message in err and out == "", (module, argv, err)


def test_search_of_a_folder_without_a_study_is_refused(tmp_path, capsys):
    sweeper = {"_target_": "x.StackedSearchSweeper", "kind": "search", "study_name": "bayes",
               "storage": None}  # fmt: skip
    search_config = {"hydra": {"sweeper": sweeper}}
    (tmp_path / "multirun.yaml").write_text(json.dumps(search_config))  # no study.journal
    assert report_main([str(tmp_path)]) == 2  # a search's folder: its report
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}: its study cannot be loaded") and err.count("\n") == 1


@pytest.mark.parametrize("module", ["src.train", "src.autodiff.train"])
@pytest.mark.filterwarnings("ignore:'src.*' found in sys.modules:RuntimeWarning")  # imported here
def test_hydra_apps_answer_help(module, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module(module, run_name="__main__")  # as python -m does, in this process
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "Powered by Hydra" in out and "== Config ==" in out


def test_python_m_src_report_help_in_a_fresh_process():
    done = subprocess.run(
        [sys.executable, "-m", "src.report", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: python -m src.report [-h] ")
    words = " ".join(done.stdout.split())  # argparse wraps to the terminal's width
    assert "sweep_dir" in words and "a search's for a search's folder, else a grid's" in words


# -- a run's or a sweep's folder that cannot be made ------------------------------------------


@pytest.mark.parametrize("module", ["src.train", "src.autodiff.train"])
def test_a_run_folder_that_is_a_file_is_one_line_and_exit_2(tmp_path, module):
    a_file = tmp_path / "run"
    a_file.write_text("")
    for folder in (a_file, a_file / "below"):
        done = subprocess.run(
            [sys.executable, "-m", module, "logger=none", f"hydra.run.dir={folder}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
        assert done.stderr.splitlines() == [
            f"error: hydra.run.dir='{folder}' is not allowed: a folder that can be made "
            f"({a_file} is a file, not a folder)"
        ]


# A sweep's folder is made by its sweeper: test_sweep_control.py's
# test_a_sweep_folder_that_is_a_file_is_refused_in_one_line.
@pytest.mark.parametrize("hook, key", [("on_run_start", "hydra.run.dir")])
def test_the_folder_check_makes_the_folder_or_refuses_it(tmp_path, capsys, hook, key):
    def config(folder):
        return OmegaConf.create(
            {"hydra": {"run": {"dir": str(folder)}, "sweep": {"dir": str(folder)}}}
        )

    getattr(OutputFolderCheck(), hook)(config(tmp_path / "new" / "folder"))
    assert (tmp_path / "new" / "folder").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        getattr(OutputFolderCheck(), hook)(config(tmp_path / "file"))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {key}='{tmp_path / 'file'}' is not allowed: a folder")


def test_a_default_folder_under_a_file_is_left_to_the_folder_check(tmp_path):
    (tmp_path / "outputs").write_text("")  # where the default run folders go
    wanted = str(tmp_path / "outputs" / "2026-01-01" / "12-00-00")
    assert unique_dir(wanted) == wanted and not Path(wanted).exists()  # no resolver error
    assert unique_dir(str(tmp_path / "runs" / "a")) == str(tmp_path / "runs" / "a")
    assert unique_dir(str(tmp_path / "runs" / "a")) == str(tmp_path / "runs" / "a-2")
