"""The failure contract through the real entrypoints: a precise reason in output/failure, exit non-zero."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest
from image_helpers import PENGUINS_SCHEMA, Sandbox, write_firehose

from rookery.demo.dataset import penguin_records

pytestmark = pytest.mark.slow

HYPERPARAMETERS = {"num_round": 5, "max_depth": 3}


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real preprocess run's outputs, to build training jobs from."""
    prep = Sandbox(tmp_path_factory.mktemp("splits"), PENGUINS_SCHEMA)
    write_firehose(prep.processing_input("raw"), "penguins", penguin_records())
    assert prep.preprocess().returncode == 0
    return {name: prep.processing_output(name) for name in ("train", "validation", "preprocessor")}


def fail(sandbox: Sandbox, entrypoint: str, *args: str, **env: str) -> str:
    return failed(sandbox, sandbox.run(entrypoint, *args, **env))


def fail_preprocess(sandbox: Sandbox, *args: str, **env: str) -> str:
    """The reason of the first preprocessing job that fails (on one instance)."""
    return failed(sandbox, sandbox.preprocess(*args, **env))


def failed(sandbox: Sandbox, result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    reason = sandbox.failure
    assert reason.startswith("UserError: "), reason
    assert reason.strip() in result.stderr, "the reason also reaches the job log"
    assert (sandbox.base / "output" / "message").read_text() == reason, (
        "processing jobs report it as ExitMessage"
    )
    return reason


@pytest.mark.parametrize(
    ("hyperparameters", "reason"),
    [
        (
            {"num_round": 5, "max_depth": "six"},
            "hyperparameter 'max_depth' = 'six' is not a number; it must be a tree depth",
        ),
        ({"num_round": 5, "max_depth": "6.5"}, "'max_depth' = '6.5' is not a whole number"),
        ({"num_round": 5, "eta": "1.5"}, "'eta' = '1.5' is out of range; it must be a step size in [0, 1]"),
        ({"num_round": 5, "subsample": "0"}, "'subsample' = '0' is out of range"),
        (
            {"num_round": 5, "objective": "reg:squarederror"},
            "'objective' = 'reg:squarederror' is not supported",
        ),
        ({"num_round": 5, "eval_metric": "auc,mape"}, "names unsupported metrics ['mape']"),
        ({"num_round": 5, "max_dept": "4"}, "unknown hyperparameter 'max_dept' (did you mean 'max_depth'?)"),
        ({"max_depth": "4"}, "hyperparameter 'num_round' is required"),
    ],
    ids=["text", "fraction", "range", "open-range", "objective", "metric", "typo", "required"],
)
def test_bad_hyperparameter(
    tmp_path: Path, splits: dict[str, Path], hyperparameters: dict[str, str], reason: str
) -> None:
    job = Sandbox(tmp_path)
    job.training_job(hyperparameters, splits)
    assert reason in fail(job, "train")


def test_missing_channel(tmp_path: Path, splits: dict[str, Path]) -> None:
    job = Sandbox(tmp_path)
    job.training_job(
        HYPERPARAMETERS, {"validation": splits["validation"], "preprocessor": splits["preprocessor"]}
    )
    reason = fail(job, "train")
    assert "missing channel 'train' (training rows, CSV with the label first)" in reason
    assert "Add a training input named 'train'" in reason


def test_empty_training_data(tmp_path: Path, splits: dict[str, Path]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.csv").write_text("")
    job = Sandbox(tmp_path / "ml")
    job.training_job(HYPERPARAMETERS, {**splits, "train": empty})
    assert "channel 'train' holds no rows (1 file(s): ['train.csv'])" in fail(job, "train")


def test_malformed_training_csv(tmp_path: Path, splits: dict[str, Path]) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = (splits["train"] / "train.csv").read_text().splitlines()
    lines[3] = "2" + lines[3][1:]
    (bad / "train.csv").write_text("\n".join(lines) + "\n")
    job = Sandbox(tmp_path / "ml")
    job.training_job(HYPERPARAMETERS, {**splits, "train": bad})
    assert "file train.csv line 4: label 2 is not 0 or 1" in fail(job, "train")


def test_corrupt_gzip(tmp_path: Path) -> None:
    prep = Sandbox(tmp_path, PENGUINS_SCHEMA)
    files = write_firehose(prep.processing_input("raw"), "penguins", penguin_records())
    gz = next(f for f in files if f.suffix == ".gz")
    gz.write_bytes(gz.read_bytes()[:200])  # truncated upload
    reason = fail_preprocess(prep)
    rel = gz.relative_to(prep.processing_input("raw")).as_posix()
    assert f"raw file {rel} is not a valid gzip file" in reason
    assert "delete it or upload it again" in reason


def test_empty_raw_data(tmp_path: Path) -> None:
    prep = Sandbox(tmp_path, PENGUINS_SCHEMA)
    part = prep.processing_input("raw") / "penguins" / "ingest_date=2024-05-01" / "part-0.gz"
    part.parent.mkdir(parents=True)
    part.write_bytes(gzip.compress(b"\n"))
    assert "has 1 file(s) but no records; ingest data first" in fail_preprocess(prep)


def test_malformed_raw_record(tmp_path: Path) -> None:
    prep = Sandbox(tmp_path, PENGUINS_SCHEMA)
    part = prep.processing_input("raw") / "penguins" / "part-0"
    part.parent.mkdir(parents=True)
    part.write_text(json.dumps(penguin_records()[0]) + "\n{'species': 'Adelie'}\n")
    assert "raw file penguins/part-0 line 2 is not JSON" in fail_preprocess(prep)


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (
            {**PENGUINS_SCHEMA, "target": "species", "categorical": ["island"]},
            "target 'species' has 3 class(es)",
        ),
        (
            {**PENGUINS_SCHEMA, "positive_class": "Female"},
            "positive_class 'Female' never occurs in target 'sex'",
        ),
        (
            {**PENGUINS_SCHEMA, "numeric": ["beak_mm"]},
            "columns ['beak_mm'] of the dataset schema appear in no raw record",
        ),
        (
            {**PENGUINS_SCHEMA, "numeric": ["sex"]},
            "ROOKERY_DATASET_SCHEMA: target = 'sex': target column 'sex' is also listed as a feature",
        ),
        ({**PENGUINS_SCHEMA, "colour": "blue"}, "ROOKERY_DATASET_SCHEMA: colour = 'blue': unknown field"),
    ],
    ids=["three-classes", "positive-class", "absent-column", "target-as-feature", "unknown-field"],
)
def test_bad_dataset(tmp_path: Path, schema: dict[str, object], reason: str) -> None:
    prep = Sandbox(tmp_path, schema)
    write_firehose(prep.processing_input("raw"), "penguins", penguin_records())
    assert reason in fail_preprocess(prep)


def test_missing_schema_and_bad_arguments(tmp_path: Path) -> None:
    prep = Sandbox(tmp_path)
    write_firehose(prep.processing_input("raw"), "penguins", penguin_records())
    assert "ROOKERY_DATASET_SCHEMA is not set" in fail_preprocess(prep)
    prep = Sandbox(tmp_path, PENGUINS_SCHEMA)
    assert "adds up to 1.1" in fail_preprocess(prep, "--split", "0.7,0.2,0.2")
    assert "unrecognized arguments: --shuffle" in fail_preprocess(prep, "--shuffle")


def test_evaluate_bad_operating_point_and_missing_model(tmp_path: Path) -> None:
    job = Sandbox(tmp_path)
    assert "operating point 'min_recall:0.9' is unknown" in fail(
        job, "evaluate.py", "--operating-point", "min_recall:0.9"
    )
    assert "'min_sensitivity:1.5': the bar must be between 0 and 1" in fail(
        job, "evaluate.py", "--operating-point", "min_sensitivity:1.5"
    )
    assert "--confidence 0.4 must be at least 0.5 and below 1" in fail(
        job, "evaluate.py", "--operating-point", "best_f1", "--confidence", "0.4"
    )
    assert "no model archive at" in fail(job, "evaluate.py")


def _with_text_in_body_mass(every: int) -> list[dict[str, object]]:
    """The penguins with body_mass_g sent as text in every ``every``-th row (a producer bug)."""
    records = penguin_records()
    for i, record in enumerate(records):
        if i % every == 0:
            record["body_mass_g"] = "heavy" if i % (2 * every) == 0 else "4,100 g"
    return records


def test_invalid_values_above_the_limit_fail_preprocess_naming_the_column_and_examples(
    tmp_path: Path,
) -> None:
    prep = Sandbox(tmp_path, PENGUINS_SCHEMA)
    write_firehose(prep.processing_input("raw"), "penguins", _with_text_in_body_mass(12))  # about 8%
    reason = fail_preprocess(prep)
    assert "invalid values above the limit of 1.0% per column (stage ml.max_invalid_fraction)" in reason
    assert "column 'body_mass_g': 29 of 333 values (8.7%) are not numbers (e.g. 'heavy', '4,100 g')" in reason
    assert "raise the limit to impute them as missing" in reason
    assert len(reason.splitlines()) <= 4
    assert not prep.processing_output("train").exists(), "nothing is written"


def test_invalid_values_under_the_limit_are_imputed_with_a_warning_and_reported(tmp_path: Path) -> None:
    prep = Sandbox(tmp_path, PENGUINS_SCHEMA)
    write_firehose(prep.processing_input("raw"), "penguins", _with_text_in_body_mass(12))
    done = prep.preprocess("--max-invalid-fraction", "0.1")
    assert done.returncode == 0, done.stderr
    warning = (
        "column 'body_mass_g': 29 of 333 values (8.7%) are not numbers (e.g. 'heavy', '4,100 g'): imputed"
    )
    assert f"preprocess: WARNING {warning}" in done.stdout
    report = json.loads((prep.processing_output("report") / "data_report.json").read_text())
    invalid = report["invalid_values"]
    assert invalid["counts"] == {"body_mass_g": 29} and invalid["fractions"] == {"body_mass_g": 0.087087}
    assert invalid["examples"] == {"body_mass_g": ["'heavy'", "'4,100 g'"]} and invalid["max_fraction"] == 0.1
    assert invalid["warnings"] == [warning + " as missing"]
    assert "between 0 and 1" in fail_preprocess(prep, "--max-invalid-fraction", "2")
