"""End to end, tune variant, through the engine API: trials within the ranges, the best one used.

One run per session (xdist group ``local-tune``) of the dev stage with 4 trials, 2 at a time.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from local_testing import (
    auc_in_order,
    engine_for,
    lines,
    new_home,
    put_jsonl,
    read_json,
    rows_and_answers,
    step_named,
)

from emulators.s3 import LocalS3
from emulators.sagemaker import Execution, LocalHome, LocalRegistry, StepEvent
from rookery.demo.dataset import penguin_records
from stage import Stage

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-tune")]


@dataclass
class TuneRun:
    home: LocalHome
    execution: Execution
    events: list[StepEvent]
    definition: dict[str, Any]


@pytest.fixture(scope="session")
def tune_run(
    tmp_path_factory: pytest.TempPathFactory, tune_stage: Stage, tune_definition: dict[str, Any]
) -> TuneRun:
    home = new_home(tmp_path_factory.mktemp("local-tune") / "home")
    put_jsonl(home, "s3://rookery-dev-raw/penguins/ingest_date=2024-05-01/penguins-1", penguin_records())
    events: list[StepEvent] = []
    execution = engine_for(tune_stage, home).run(tune_definition, on_event=events.append)
    return TuneRun(home, execution, events, tune_definition)


def test_the_tune_run_succeeds_and_registers(tune_run: TuneRun) -> None:
    execution = tune_run.execution
    assert execution.status == "Succeeded", execution.failure_reason
    assert {s.name: s.status for s in execution.steps} == {
        "Profile": "Succeeded",
        "Fit": "Succeeded",
        "Preprocess": "Succeeded",
        "Tune": "Succeeded",
        "Evaluate": "Succeeded",
        "Gate": "Succeeded",
        "Baseline": "Succeeded",
        "Register": "Succeeded",
        "CreateModel": "Succeeded",
        "BatchTransform": "Succeeded",
        "Fail": "Skipped",
    }
    [package] = LocalRegistry(tune_run.home).packages()
    evaluate = execution.step("Evaluate").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"][
        "S3Uri"
    ]
    assert package.metrics == read_json(tune_run.home, f"{evaluate}/evaluation.json")


def test_trials_are_bounded_by_the_definition_and_the_best_is_picked(tune_run: TuneRun) -> None:
    tune = tune_run.execution.step("Tune")
    config = step_named(tune_run.definition, "Tune")["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 4}
    trials = tune.metrics["trials"]
    assert len(trials) == 4 and all(t["status"] == "Completed" for t in trials)
    best = max(trials, key=lambda t: t["objective"])
    props = tune.properties
    assert props["BestTrainingJob"]["TrainingJobName"] == best["name"] == tune.metrics["best"]
    objective = props["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]
    assert objective == {"Type": "Maximize", "MetricName": "validation:auc", "Value": best["objective"]}
    values = [
        s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in props["TrainingJobSummaries"]
    ]
    assert values == sorted(values, reverse=True), "TrainingJobSummaries are best first"
    assert props["TrainingJobStatusCounters"]["Completed"] == 4
    assert props["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    tuning = props["HyperParameterTuningJobName"]
    assert len(tuning) <= 32
    for trial in trials:
        assert re.fullmatch(rf"{re.escape(tuning)}-00[1-4]-[0-9a-f]{{8}}", trial["name"])


def test_trials_sample_within_the_declared_ranges(tune_run: TuneRun) -> None:
    ranges = step_named(tune_run.definition, "Tune")["Arguments"]["HyperParameterTuningJobConfig"][
        "ParameterRanges"
    ]
    bounds = {
        r["Name"]: (float(r["MinValue"]), float(r["MaxValue"])) for kind in ranges.values() for r in kind
    }
    integers = {r["Name"] for r in ranges["IntegerParameterRanges"]}
    trials = tune_run.execution.step("Tune").metrics["trials"]
    for trial in trials:
        assert set(trial["hyperparameters"]) == set(bounds)
        for name, text in trial["hyperparameters"].items():
            low, high = bounds[name]
            value = float(text)
            assert low <= value <= high, (name, text)
            if name in integers:
                assert re.fullmatch(r"\d+", text)
    # A Latin hypercube over 4 trials puts one eta in each quarter of its (logarithmic) range.
    low, high = bounds["eta"]
    quarters = sorted(
        int(
            4
            * (math.log(float(t["hyperparameters"]["eta"])) - math.log(low))
            / (math.log(high) - math.log(low))
        )
        for t in trials
    )
    assert quarters == [0, 1, 2, 3]


def test_each_trial_is_a_training_job_with_the_tuned_and_static_hyperparameters(tune_run: TuneRun) -> None:
    tune = tune_run.execution.step("Tune")
    assert tune.job_dir is not None
    trial = tune.metrics["trials"][0]
    config = json.loads(
        (tune.job_dir / trial["name"] / "input" / "config" / "hyperparameters.json").read_text()
    )
    assert config["_tuning_objective_metric"] == "validation:auc"
    assert config["num_round"] == "30" and config["eval_metric"] == "auc"
    assert {k: config[k] for k in trial["hyperparameters"]} == trial["hyperparameters"]
    assert Path(trial["log"]).is_file() and "validation-auc:" in Path(trial["log"]).read_text()


def test_the_model_used_downstream_is_the_best_trials(tune_run: TuneRun) -> None:
    execution = tune_run.execution
    best = execution.step("Tune").properties["BestTrainingJob"]["TrainingJobName"]
    output_path = step_named(tune_run.definition, "Tune")["Arguments"]["TrainingJobDefinition"][
        "OutputDataConfig"
    ]["S3OutputPath"]
    model = f"{output_path}/{best}/output/model.tar.gz"
    assert LocalS3(tune_run.home).path(model).is_file()
    assert execution.step("Evaluate").properties["ProcessingInputs"][0]["S3Input"]["S3Uri"] == model
    assert LocalRegistry(tune_run.home).packages()[0].inference_spec["model_data_url"] == model


def test_at_most_max_parallel_trials_ran_at_once(tune_run: TuneRun) -> None:
    summaries = tune_run.execution.step("Tune").properties["TrainingJobSummaries"]
    spans = [(s["TrainingStartTime"], s["TrainingEndTime"]) for s in summaries]
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= 2


def test_progress_events_use_sagemakers_status_words(tune_run: TuneRun) -> None:
    tune_events = [e for e in tune_run.events if e.step_name == "Tune"]
    assert [e.status for e in tune_events][:2] == ["Starting", "Executing"]
    assert tune_events[-1].status == "Succeeded"
    assert sum(1 for e in tune_events if e.message and e.message.startswith("trial ")) == 4
    assert {e.status for e in tune_run.events} == {"Starting", "Executing", "Succeeded", "Skipped"}
    assert all(e.execution_id == tune_run.execution.id for e in tune_run.events)


def test_the_transform_answers_every_test_row_in_order(tune_run: TuneRun) -> None:
    execution = tune_run.execution
    rows, answers = rows_and_answers(tune_run.home, execution)
    outputs = execution.step("Preprocess").properties["ProcessingOutputConfig"]["Outputs"]
    inference = next(o for o in outputs if o["OutputName"] == "inference")["S3Output"]["S3Uri"]
    assert (
        len(answers) == len(rows) == len(lines(LocalS3(tune_run.home).path(f"{inference}/test.jsonl"))) == 50
    )
    # In the test rows' order: paired line by line, the answers score exactly the AUC Evaluate
    # measured on the same rows with the same (best trial's) model; another order would not.
    evaluate = execution.step("Evaluate").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    evaluation = read_json(tune_run.home, f"{evaluate['S3Uri']}/evaluation.json")
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert auc_in_order(rows, answers) == pytest.approx(auc, abs=1e-9)
    assert auc_in_order(rows, answers[1:] + answers[:1]) != pytest.approx(auc, abs=1e-9), "the check can tell"
    threshold = evaluation["decision_threshold"]["value"]
    assert all((a["label"] == "female") == (a["probability"] >= threshold) for a in answers)
