"""StackedSearchSweeper: an Optuna study whose every trial trains a stack of seeds.

Each trial is one job launched through the configured launcher, with the trial's parameters
and `++seeds=[...]`; its value is the mean val_loss of its seeds (each kept on the trial).
The study lives in the sweep folder (`study.journal`) or any Optuna storage, so a rerun into
the folder resumes it. Only Optuna's public ask-and-tell API is used.
"""

from __future__ import annotations

import logging
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from src.errors import ConfigError, exit_on_config_error
from src.run.files import member_dir, no_space, read_metrics
from src.run.schema import SEED_KEY, STACK_KEY
from src.sweep.jobs import FINISHED
from src.sweep.lifetime import stop_on_full_disk
from src.sweep.preflight import Plan, mark_unfinished
from src.sweep.space import (
    check_search_space,
    cut_torn_tail,
    describe_space,
    distribution,
    journal_file,
    make_pruner,
    make_sampler,
    override_value,
    study_storage,
)

from .launching import LaunchingSweeper, job_value
from .overrides import parse, seeds_override, swept_seeds

log = logging.getLogger(__name__)
SPACE_ATTR = "space"  # the study's user attribute that records what it searches


class StackedSearchSweeper(LaunchingSweeper):
    """Asks an Optuna study for `n_jobs` trials at a time until it holds `n_trials` finished
    ones; each trial's seeds train as one stacked job."""

    kind = "search"

    def __init__(
        self,
        n_trials: int = 20,
        n_jobs: int = 1,
        direction: str = "minimize",
        study_name: str = "search",
        storage: str | None = None,
        sampler: Any = None,
        pruner: str | None = None,
        pruner_args: Any = None,
        params: dict[str, str] | None = None,
        seed_key: str = SEED_KEY,
        stack_key: str = STACK_KEY,
        kind: str = "search",
    ) -> None:
        self.n_trials, self.n_jobs, self.direction = n_trials, n_jobs, direction
        self.study_name, self.storage = study_name, storage
        self.sampler, self.pruner, self.pruner_args = sampler, pruner, pruner_args
        super().__init__(params, seed_key, stack_key, kind)

    def check(self) -> None:
        super().check()
        check_search_space(self.config)  # its space, before anything else runs

    def space(self, arguments: list[str]) -> tuple[dict[str, Any], list[str], list[str]]:
        """The distributions searched, the overrides every trial shares, and its seeds."""
        overrides = parse(self.params, arguments, self.hydra_context)
        space, fixed = {}, {}  # a key's last override wins, as a sweep or as a fixed value
        for override in overrides:
            key = override.get_key_element()
            if key == self.seed_key:
                continue
            if override.is_sweep_override():
                space[key] = distribution(override)
                fixed.pop(key, None)
            else:
                fixed[key] = f"{key}={override.get_value_element_as_str()}"
                space.pop(key, None)
        seeds = swept_seeds(overrides, self.seed_key)
        if seeds is None:
            seeds = [str(OmegaConf.select(self.config, self.seed_key))]
        return space, list(fixed.values()), seeds

    def plan(self, arguments: list[str]) -> Plan:
        space, _, seeds = self.space(arguments)
        return self.plan_of(space, seeds)

    def plan_of(self, space: dict[str, Any], seeds: list[str]) -> Plan:
        """Its runs (every trial's seeds) and the keys it searches; its trials are asked later."""
        total = self.n_trials * len(seeds)
        return Plan(self.kind, self.seed_key, self.stack_key, total, sorted(space))

    def open_study(self, sweep_dir: Path, space: dict[str, Any], seeds: list[str]):
        """The study of this search, created or loaded; refuses one of another space."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            storage=study_storage(self.storage, sweep_dir),
            sampler=make_sampler(self.sampler),
            pruner=make_pruner(self.pruner, self.pruner_args),
            study_name=self.study_name,
            direction=self.direction,
            load_if_exists=True,
        )
        wanted = describe_space(space, [int(s) for s in seeds])
        recorded = study.user_attrs.get(SPACE_ATTR)
        if recorded is None:
            study.set_user_attr(SPACE_ATTR, wanted)
        elif recorded != wanted:
            changed = sorted(k for k in {**recorded, **wanted} if recorded.get(k) != wanted.get(k))
            raise ConfigError(
                "hydra.sweeper.params",
                ", ".join(changed),
                f"the space of the study {self.study_name!r} there (it differs in: "
                f"{', '.join(changed)}); choose a new hydra.sweep.dir or study_name",
            )
        return study

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        exit_on_config_error(self.check)()
        space, fixed, seeds = self.space(arguments)
        sweep_dir = self.open(self.plan_of(space, seeds))
        with stop_on_full_disk(sweep_dir, mark_unfinished):
            return self.search(sweep_dir, space, fixed, seeds)

    def search(
        self, sweep_dir: Path, space: dict[str, Any], fixed: list[str], seeds: list[str]
    ) -> list[Sequence[JobReturn]]:
        """The study, resumed or new, asked and told until it holds n_trials finished trials."""
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        journal = journal_file(self.storage, sweep_dir)
        aside = cut_torn_tail(journal) if journal is not None else None
        if aside is not None:
            log.warning(
                f"{journal}: its last line was cut short (a crash while writing it): kept in "
                f"{aside.name} beside it, the study resumes without it"
            )
        try:
            study = self.open_study(sweep_dir, space, seeds)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        retry_interrupted(study, sweep_dir, space)
        returns = []
        # A launcher that takes jobs one by one (SLURM's pool) starts a trial as soon as one
        # ends; any other runs `n_jobs` trials at a time, each batch waiting for its slowest.
        one_by_one = callable(getattr(self.launcher, "start", None))
        in_flight: dict[int, Any] = {}
        while (done := len(finished_trials(study))) + len(in_flight) < self.n_trials or in_flight:
            free = min(self.n_jobs - len(in_flight), self.n_trials - done - len(in_flight))
            trials = [study.ask(space) for _ in range(max(free, 0))]
            for trial in trials:
                trial.set_user_attr(STACK_KEY, [int(s) for s in seeds])
            jobs = [
                [*fixed, *(f"{k}={override_value(v)}" for k, v in t.params.items())]
                + [seeds_override(self.stack_key, seeds)]
                for t in trials
            ]
            if one_by_one:
                for trial, job in zip(trials, jobs):
                    self.launcher.start([job], trial.number)
                    in_flight[trial.number] = trial
                ended = self.launcher.wait()
                told = [(in_flight.pop(n), result) for n, result in ended.items()]
            else:
                told = list(zip(trials, self.launch(trials, jobs)))
            for trial, result in told:
                tell(study, trial, result, self.direction)
            returns.append([r for _, r in told if r is not None])
        write_best(study, sweep_dir)
        self.close_launcher()
        return returns

    def launch(self, trials: list[Any], jobs: list[list[str]]) -> list[JobReturn | None]:
        """Launch the trials side by side, each as job number = its trial number (its folder
        is trial=<n>); None for a trial whose launch failed (a worker killed, ...)."""
        results: list[JobReturn | None] = []
        start = 0
        while start < len(trials):  # runs of consecutive trial numbers share a launch
            end = start + 1
            while end < len(trials) and trials[end].number == trials[end - 1].number + 1:
                end += 1
            try:
                results += self.launcher.launch(jobs[start:end], trials[start].number)
            except Exception as error:  # the search goes on: these trials failed
                if no_space(error):  # but not on a full disk: no trial could write
                    raise
                log.error(f"trials {trials[start].number}-{trials[end - 1].number}: {error}")
                results += [None] * (end - start)
            start = end
        return results


def finished_trials(study: Any) -> list[Any]:
    """The trials that count towards n_trials: complete, pruned, or failed by their job (a
    trial left running by a killed sweep was closed as failed without an error: not counted)."""
    from optuna.trial import TrialState

    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and "error" in t.user_attrs)
    ]


def retry_interrupted(study: Any, sweep_dir: Path, space: dict[str, Any]) -> None:
    """Close the trials a killed sweep left running: one whose seeds had all finished (killed
    before the study was told) is told what they recorded; any other is failed, its
    parameters asked again, and its seeds' folders get a failed record (never trained again).
    A trial killed while it was being asked has only some parameters and never ran: closed."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_dir = sweep_dir / f"trial={trial.number}"
        records = [
            read_metrics(member_dir(trial_dir, s)) for s in trial.user_attrs.get(STACK_KEY, [])
        ]
        if records and all(r and r["status"] in FINISHED for r in records):
            statuses = {r["status"] for r in records}
            if "pruned" in statuses:
                study.tell(trial.number, state=TrialState.PRUNED)
            else:
                worst = math.inf if study.direction.name == "MINIMIZE" else -math.inf
                values = [worst if r["status"] == "diverged" else r["val_loss"] for r in records]
                study.tell(trial.number, statistics.fmean(values))
            log.info(f"trial {trial.number} had finished when the sweep was killed: told so")
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        if set(trial.params) == set(space):
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            log.info(f"trial {trial.number} was left running: closed as failed, asked again")
    mark_unfinished(sweep_dir)


def trial_outcome(result: JobReturn | None, seeds: list[int]) -> dict[str, Any]:
    """What a trial's job left: each seed's status and val_loss, read from its metrics.json."""
    if result is None:
        return {"statuses": {}, "values": {}, "error": "its job did not run"}
    if result.status != JobStatus.COMPLETED:
        try:
            job_value(result)  # raises the job's exception (a full disk: on to the sweep)
        except Exception as error:
            if no_space(error):
                raise
            return {"statuses": {}, "values": {}, "error": f"its job raised {error!r}"}
    job_dir = Path(result.hydra_cfg.hydra.runtime.output_dir)
    records = {s: read_metrics(member_dir(job_dir, s)) for s in seeds}
    missing = [s for s, r in records.items() if r is None]
    records = {s: r for s, r in records.items() if r is not None}
    errors = [f"seed={s}: {r.get('error')}" for s, r in records.items() if r["status"] == "failed"]
    errors += [f"seed={s}: no metrics.json" for s in missing]
    return {
        "statuses": {s: r["status"] for s, r in records.items()},
        "values": {s: r.get("val_loss") for s, r in records.items() if r["status"] != "failed"},
        "error": "; ".join(errors) or None,
    }


def tell(study: Any, trial: Any, result: JobReturn | None, direction: str) -> None:
    """A failed seed fails the trial; a pruned stack is pruned; a diverged seed makes it the
    worst trial; else its value is the mean val_loss of its seeds."""
    from optuna.trial import TrialState

    outcome = trial_outcome(result, trial.user_attrs[STACK_KEY])
    trial.set_user_attr("seed_values", {str(s): v for s, v in outcome["values"].items()})
    trial.set_user_attr("statuses", {str(s): v for s, v in outcome["statuses"].items()})
    if outcome["error"]:
        trial.set_user_attr("error", outcome["error"])
        study.tell(trial, state=TrialState.FAIL)
    elif "pruned" in outcome["statuses"].values():
        study.tell(trial, state=TrialState.PRUNED)
    elif "diverged" in outcome["statuses"].values():
        study.tell(trial, math.inf if direction == "minimize" else -math.inf)
    else:
        study.tell(trial, statistics.fmean(outcome["values"].values()))


def write_best(study: Any, sweep_dir: Path) -> None:
    """optimization_results.yaml, as Hydra's Optuna sweeper writes it."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        log.info("no trial completed: no best trial")
        return
    best = study.best_trial
    results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    log.info(f"best trial: {best.number}, value {best.value:.4g}, params {best.params}")
