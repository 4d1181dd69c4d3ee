"""The engine's pure parts: expressions and conditions, S3 prefixes, parameters, the sampler, batching,
the registry and --data landing. Fast; no job runs."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from emulators.core import procs
from emulators.core.errors import LocalEngineError
from emulators.firehose import DataFileError, land
from emulators.firehose.landing import read_records
from emulators.s3 import LocalS3
from emulators.sagemaker import InterruptPlan, LocalHome, LocalRegistry, RegistryError
from emulators.sagemaker.pipeline.expressions import ExpressionError, Scope, lookup, to_text
from emulators.sagemaker.pipeline.parameters import resolve_parameters
from emulators.sagemaker.steps.spot import Trigger
from emulators.sagemaker.steps.transform import batches
from emulators.sagemaker.steps.tuning import sample
from pipelines.parameters import ParameterError
from pipelines.reading.paths import tokens
from stage import DataLayout, DatasetSchema

SCHEMA = DatasetSchema(
    name="penguins",
    target="sex",
    positive_class="female",
    numeric=("bill_length_mm", "body_mass_g"),
    categorical=("island",),
)


def _scope(properties: dict[str, Any] | None = None, files: dict[str, Any] | None = None) -> Scope:
    def step(name: str) -> Any:
        if properties is None or name not in properties:
            raise ExpressionError(f"no step {name}")
        return properties[name]

    return Scope(
        {"Threshold": 0.85, "Count": 1, "Name": "x", "Flag": True},
        {"PipelineExecutionId": "abc123def456"},
        step,
        lambda step_name, file_name: (files or {})[f"{step_name}.{file_name}"],
    )


# -- expressions ---------------------------------------------------------------------------------
def test_property_paths_parse_like_the_sdk_writes_them() -> None:
    assert tokens("ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == [
        "ProcessingOutputConfig",
        "Outputs",
        ("train",),
        "S3Output",
        "S3Uri",
    ]
    assert tokens("TrainingJobSummaries[0].TrainingJobName") == ["TrainingJobSummaries", 0, "TrainingJobName"]
    with pytest.raises(ValueError, match="cannot read"):
        tokens("A..B")


def test_a_keyed_index_picks_the_list_member_by_its_name() -> None:
    value = {"FinalMetricDataList": [{"MetricName": "a", "Value": 1.0}, {"MetricName": "b", "Value": 2.0}]}
    assert lookup(value, tokens("FinalMetricDataList['b'].Value"), "x") == 2.0
    with pytest.raises(ExpressionError, match=r"FinalMetricDataList\['c'\] does not exist"):
        lookup(value, tokens("FinalMetricDataList['c'].Value"), "x")


def test_join_writes_values_as_the_service_does() -> None:
    scope = _scope()
    joined = scope.resolve(
        {
            "Std:Join": {
                "On": "/",
                "Values": [
                    "s3://b",
                    {"Get": "Execution.PipelineExecutionId"},
                    {"Get": "Parameters.Threshold"},
                    {"Get": "Parameters.Count"},
                    {"Get": "Parameters.Flag"},
                ],
            }
        }
    )
    assert joined == "s3://b/abc123def456/0.85/1/true"
    assert [to_text(v) for v in (1.0, 0.1, None, "a")] == ["1.0", "0.1", "null", "a"]


def test_json_get_reads_a_property_file_path() -> None:
    scope = _scope(files={"Evaluate.Report": {"metrics": {"auc": {"value": 0.91}}, "list": [{"x": 3}]}})
    get = {"Get": "Steps.Evaluate.PropertyFiles.Report"}
    assert scope.resolve({"Std:JsonGet": {"PropertyFile": get, "Path": "metrics.auc.value"}}) == 0.91
    assert scope.resolve({"Std:JsonGet": {"PropertyFile": get, "Path": "list[0].x"}}) == 3
    with pytest.raises(ExpressionError, match=r"metrics\.recall does not exist"):
        scope.resolve({"Std:JsonGet": {"PropertyFile": get, "Path": "metrics.recall.value"}})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Type": "Equals", "LeftValue": 1, "RightValue": 1.0}, True),
        ({"Type": "Equals", "LeftValue": "1", "RightValue": 1}, False),
        ({"Type": "Equals", "LeftValue": True, "RightValue": 1}, False),
        (
            {
                "Type": "GreaterThanOrEqualTo",
                "LeftValue": 0.85,
                "RightValue": {"Get": "Parameters.Threshold"},
            },
            True,
        ),
        ({"Type": "GreaterThan", "LeftValue": 0.85, "RightValue": {"Get": "Parameters.Threshold"}}, False),
        ({"Type": "LessThan", "LeftValue": 2, "RightValue": 10}, True),
        ({"Type": "LessThanOrEqualTo", "LeftValue": 10, "RightValue": 2}, False),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["y", "x"]}, True),
        ({"Type": "Not", "Expression": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, True),
        (
            {
                "Type": "Or",
                "Conditions": [
                    {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                    {"Type": "Equals", "LeftValue": "a", "RightValue": "a"},
                ],
            },
            True,
        ),
    ],
)
def test_conditions_compare_as_sagemaker_does(condition: dict[str, Any], expected: bool) -> None:
    assert _scope().condition(condition) is expected


def test_ordering_a_text_value_is_an_error_naming_it() -> None:
    with pytest.raises(
        ExpressionError, match=r"GreaterThan compares numbers, but its LeftValue is 'high' \(str\)"
    ):
        _scope().condition({"Type": "GreaterThan", "LeftValue": "high", "RightValue": 1})


# -- local S3 ------------------------------------------------------------------------------------
def test_s3_paths_map_under_the_home_and_back(tmp_path: Path) -> None:
    s3 = LocalS3(LocalHome(tmp_path))
    path = s3.path("s3://bucket/a/b.txt")
    assert path == tmp_path / "s3" / "bucket" / "a" / "b.txt"
    assert s3.uri(path) == "s3://bucket/a/b.txt"
    for bad in ("https://bucket/a", "s3:///key", "s3://bucket/../x", "file:///etc/passwd"):
        with pytest.raises(LocalEngineError):
            s3.path(bad)
    with pytest.raises(LocalEngineError, match="not inside the local S3 folder"):
        s3.uri(tmp_path / "elsewhere")


def test_a_prefix_keeps_relative_paths_and_an_exact_key_its_file_name(tmp_path: Path) -> None:
    s3 = LocalS3(LocalHome(tmp_path))
    for key in (
        "run/Preprocess/train/train.csv",
        "run/Preprocess/train/part/2.csv",
        "run/Preprocess/test/test.csv",
    ):
        path = s3.path(f"s3://b/{key}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key)
    assert [r for r, _ in s3.list_prefix("s3://b/run/Preprocess/train")] == ["part/2.csv", "train.csv"]
    assert [r for r, _ in s3.list_prefix("s3://b/run/Preprocess/train/")] == ["part/2.csv", "train.csv"]
    assert [r for r, _ in s3.list_prefix("s3://b/run/Preprocess/test/test.csv")] == ["test.csv"]
    assert s3.list_prefix("s3://b/run/nothing") == [] and s3.list_prefix("s3://other/x") == []
    s3.download("s3://b/run/Preprocess/train", tmp_path / "job")
    assert (tmp_path / "job" / "part" / "2.csv").read_text() == "run/Preprocess/train/part/2.csv"


def test_deleting_an_object_says_whether_there_was_one(tmp_path: Path) -> None:
    s3 = LocalS3(LocalHome(tmp_path))
    s3.put_bytes(b"x", "s3://b/k/one")
    assert s3.delete("s3://b/k/one") and not s3.path("s3://b/k/one").exists()
    assert not s3.delete("s3://b/k/one") and not s3.delete("s3://b/k")


# -- parameters ----------------------------------------------------------------------------------
DEFINITION = {
    "Parameters": [
        {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://raw/penguins/"},
        {"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.85},
        {"Name": "TrainingInstanceCount", "Type": "Integer", "DefaultValue": 1},
        {"Name": "Mode", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]},
        {"Name": "Required", "Type": "String"},
    ],
    "Steps": [],
}


def test_parameters_are_typed_as_declared() -> None:
    values = resolve_parameters(
        DEFINITION, {"Required": "x", "AucThreshold": "0.9", "TrainingInstanceCount": 1}
    )
    assert values == {
        "InputDataUri": "s3://raw/penguins/",
        "AucThreshold": 0.9,
        "TrainingInstanceCount": 1,
        "Mode": "a",
        "Required": "x",
    }
    assert isinstance(values["AucThreshold"], float) and isinstance(values["TrainingInstanceCount"], int)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "parameter Required has no default value; pass it"),
        ({"Required": "x", "Mode": "c"}, "Mode must be one of a, b"),
        ({"Required": "x", "TrainingInstanceCount": "two"}, "TrainingInstanceCount is an Integer"),
        ({"Required": "x", "TrainingInstanceCount": 0}, "must be at least 1"),
    ],
)
def test_bad_parameters_name_the_parameter_and_the_fix(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        resolve_parameters(DEFINITION, given)


# -- tuning sampler ------------------------------------------------------------------------------
RANGES = {
    "IntegerParameterRanges": [{"Name": "depth", "MinValue": "3", "MaxValue": "9", "ScalingType": "Linear"}],
    "ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.001", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "sub", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
    ],
    "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}],
}


def test_the_sampler_stays_in_range_and_is_seeded() -> None:
    trials = sample(RANGES, 200, seed=1)
    assert sample(RANGES, 200, seed=1) == trials and sample(RANGES, 200, seed=2) != trials
    depths = [int(t["depth"]) for t in trials]
    assert set(depths) == set(range(3, 10))
    etas = [float(t["eta"]) for t in trials]
    assert all(0.001 <= e <= 1 for e in etas)
    # Logarithmic: as many values in each decade (a linear sampler puts ~90% above 0.1).
    decades = [sum(1 for e in etas if 10**-k < e <= 10 ** (1 - k)) for k in (1, 2, 3)]
    assert all(abs(d - 200 / 3) <= 2 for d in decades), decades
    subs = [float(t["sub"]) for t in trials]
    assert all(0.5 <= s <= 0.999 for s in subs)
    assert sum(s > 0.9 for s in subs) > 60, "reverse-logarithmic values crowd towards 1"
    assert {t["booster"] for t in trials} == {"gbtree", "dart"}


def test_the_sampler_is_a_latin_hypercube() -> None:
    trials = sample(RANGES, 10, seed=0)
    strata = sorted(int(10 * (math.log10(float(t["eta"])) + 3) / 3) for t in trials)
    assert strata == list(range(10))


# -- batch transform requests --------------------------------------------------------------------
def test_batches_pack_records_up_to_the_payload_limit_in_order() -> None:
    data = b"".join(b'{"n": %d}\n' % i for i in range(100))
    multi = list(batches(data, "Line", "MultiRecord", limit=100))
    assert sum(n for n, _ in multi) == 100 and all(len(body) <= 100 for _, body in multi)
    assert b"".join(body for _, body in multi) == data
    single = list(batches(data, "Line", "SingleRecord", limit=6 * 1024 * 1024))
    assert len(single) == 100 and single[7][1] == b'{"n": 7}\n'
    assert list(batches(data, "None", "MultiRecord", limit=10_000)) == [(1, data)]
    with pytest.raises(ValueError, match="record 1 is 20 bytes, above MaxPayloadInMB"):
        list(batches(b"x" * 20 + b"\n", "Line", "MultiRecord", limit=10))


# -- registry ------------------------------------------------------------------------------------
def _register(registry: LocalRegistry, status: str = "PendingManualApproval") -> Any:
    return registry.create(
        "models",
        region="eu-west-1",
        account="123456789012",
        approval_status=status,
        inference_spec={"image": "img", "model_data_url": "s3://b/m.tar.gz"},
        model_metrics={},
        metrics={"auc": 0.9},
        execution_id="e1",
    )


def test_registry_versions_count_up_even_when_registered_at_once(tmp_path: Path) -> None:
    registry = LocalRegistry(LocalHome(tmp_path))
    threads = [threading.Thread(target=_register, args=(registry,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.version for p in registry.packages("models")] == list(range(1, 9))


def test_registry_references_approval_and_latest_approved(tmp_path: Path) -> None:
    registry = LocalRegistry(LocalHome(tmp_path))
    first, second = _register(registry), _register(registry)
    assert second.arn == "arn:aws:sagemaker:eu-west-1:123456789012:model-package/models/2"
    assert registry.get(second.arn).version == 2 and registry.get("models/1").version == 1
    with pytest.raises(RegistryError, match="approve one with `rookery local approve models/2`"):
        registry.latest_approved("models")
    registry.approve(first.ref, description="reviewed")
    assert registry.latest_approved("models").ref == "models/1"
    assert registry.get("models/1").approval_description == "reviewed"
    with pytest.raises(RegistryError, match="no model package 'models/3'"):
        registry.get("models/3")
    with pytest.raises(RegistryError, match="not one of"):
        _register(registry, status="Maybe")


# -- --data --------------------------------------------------------------------------------------
def test_csv_data_lands_as_firehose_json_lines(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_text(
        "island,bill_length_mm,body_mass_g,sex,extra\nDream,39.1,NA,female,z\nBiscoe,x,3750,,y\n"
    )
    landed = land(LocalHome(tmp_path / "home"), source, schema=SCHEMA, layout=DataLayout(), raw_bucket="raw")
    assert landed.records == 2
    assert landed.uri.startswith("s3://raw/penguins/ingest_date=")
    records = [json.loads(line) for line in landed.path.read_text().splitlines()]
    assert records[0] == {
        "island": "Dream",
        "bill_length_mm": 39.1,
        "body_mass_g": None,
        "sex": "female",
        "extra": "z",
    }
    assert (
        records[1]["bill_length_mm"] == "x"
        and records[1]["body_mass_g"] == 3750
        and records[1]["sex"] is None
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("d.csv", "island,sex\nDream,male\n", r"no column\(s\) \['bill_length_mm', 'body_mass_g'\]"),
        ("d.jsonl", '{"island": "Dream"}\nnot json\n', "line 2 is not JSON"),
        ("d.jsonl", "[1, 2]\n", "line 1 is a JSON list, not a record"),
        (
            "d.jsonl",
            '{"island": "Dream", "sex": "male"}\n',
            r"no record has the field\(s\) \['bill_length_mm'",
        ),
    ],
)
def test_data_without_the_schemas_columns_is_refused(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFileError, match=message):
        read_records(path, SCHEMA)


def test_an_empty_data_file_is_left_for_preprocess_to_judge(tmp_path: Path) -> None:
    for name in ("empty.csv", "empty.jsonl"):
        path = tmp_path / name
        path.write_text("")
        assert read_records(path, SCHEMA) == []
    with pytest.raises(DataFileError, match="no such file"):
        read_records(tmp_path / "missing.csv", SCHEMA)


# -- job processes -------------------------------------------------------------------------------
_TICKER = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
for i in range(200):
    print(f"[{i}] tick", flush=True)
    time.sleep(0.02)
"""
# SIGTERM before the handler is installed ends the process with -15 instead of 143: both are a stop.
STOPPED = (143, -15)


def test_a_process_over_its_runtime_gets_sigterm(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as log:
        outcome = procs.run(
            [sys.executable, "-c", _TICKER], env=dict(os.environ), cwd=tmp_path, log=log, max_runtime=0.3
        )
    assert outcome.runtime_exceeded and outcome.exit_code in STOPPED and outcome.seconds < 5


def test_an_interruption_trigger_fires_on_a_log_line_and_lines_reach_the_hooks(tmp_path: Path) -> None:
    trigger = Trigger(InterruptPlan(log_pattern=r"^\[5\] "), None)
    seen: list[str] = []

    def on_line(text: str) -> None:
        seen.append(text)
        trigger.line(text)

    with (tmp_path / "log").open("w") as log:
        outcome = procs.run(
            [sys.executable, "-c", _TICKER],
            env=dict(os.environ),
            cwd=tmp_path,
            log=log,
            on_line=on_line,
            interrupt_when=trigger,
        )
    assert outcome.interrupted and outcome.exit_code == 143
    assert seen[:6] == [f"[{i}] tick\n" for i in range(6)] and len(seen) < 100
    assert (tmp_path / "log").read_text().startswith("[0] tick\n[1] tick\n")


def test_a_checkpoint_trigger_fires_only_on_a_new_file(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("{}")
    trigger = Trigger(InterruptPlan(on_checkpoint=True), tmp_path)
    watch = procs.Watch(started=0.0)
    assert not trigger(watch)
    (tmp_path / "new.json").write_text("{}")
    assert trigger(watch)


def test_a_stopped_execution_stops_its_processes(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with (tmp_path / "log").open("w") as log:
        outcome = procs.run(
            [sys.executable, "-c", _TICKER], env=dict(os.environ), cwd=tmp_path, log=log, cancel=cancel
        )
    assert outcome.stopped and outcome.exit_code in STOPPED
