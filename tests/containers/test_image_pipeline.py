"""The real entrypoints end to end: preprocess -> train -> evaluate -> serve, on two unrelated schemas.

Penguins (predicting sex) is a real dataset with missing values and categorical columns; the loans
schema is synthetic with an id column, a rare positive class and dirty values. Nothing in the image
changes between them: the dataset is configuration.
"""

from __future__ import annotations

import http.client
import json
import re
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from image_helpers import LOANS_SCHEMA, PENGUINS_SCHEMA, Endpoint, PipelineRun, serving

from rookery_contracts.evaluation import GATE_PATHS, THRESHOLD_PATH, THRESHOLD_RULE_PATH, value_at
from rookery_contracts.metrics import METRIC_DEFINITIONS
from rookery_image.model import ModelBundle
from rookery_image.training import read_split

pytestmark = pytest.mark.slow


def post(url: str, body: bytes, content_type: str, accept: str | None = None) -> tuple[int, str, bytes]:
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    conn.request("POST", "/invocations", body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.getheader("Content-Type") or "", data


def csv_rows(run: PipelineRun, split: str) -> np.ndarray:
    return np.loadtxt(run.preprocess.processing_output(split) / f"{split}.csv", delimiter=",", ndmin=2)


def check_splits(run: PipelineRun, schema: dict[str, Any]) -> None:
    pre = json.loads((run.preprocess.processing_output("preprocessor") / "preprocessor.json").read_text())
    width = 1 + len(pre["feature_names"])
    report = run.report
    sizes = {}
    for split in ("train", "validation", "test"):
        rows = csv_rows(run, split)
        assert rows.shape[1] == width, f"{split}: label first, then every encoded feature"
        assert set(np.unique(rows[:, 0])) == {0.0, 1.0}
        first = (run.preprocess.processing_output(split) / f"{split}.csv").read_text().splitlines()[0]
        assert re.fullmatch(r"[01](,[-0-9.e+]+)+", first), "no header; the label is a bare 0/1"
        sizes[split] = len(rows)
        assert report["split"][split]["rows"] == len(rows)
        assert report["split"][split]["positives"] == int(rows[:, 0].sum())
    assert sum(sizes.values()) == report["rows"]["out"]
    # Stratified: every split keeps the overall share of positives.
    overall = report["class_balance"]["positive_fraction"]
    for split, size in sizes.items():
        share = report["split"][split]["positives"] / size
        assert abs(share - overall) < 0.03, (split, share, overall)
    # Batch-transform input: the test split's raw records, same order, target left out.
    lines = (run.preprocess.processing_output("inference") / "test.jsonl").read_text().splitlines()
    assert len(lines) == sizes["test"]
    record = json.loads(lines[0])
    assert schema["target"] not in record
    assert set(schema["numeric"]) | set(schema["categorical"]) <= set(record)


def check_training(run: PipelineRun, num_round: int) -> dict[str, Any]:
    files = sorted(p.name for p in run.model_dir.iterdir())
    assert files == ["metadata.json", "preprocessor.json", "xgboost-model.ubj"]
    metadata = json.loads((run.model_dir / "metadata.json").read_text())
    rounds = [line for line in run.train_log.splitlines() if re.match(r"\[\d+\] ", line)]
    assert 1 <= len(rounds) <= num_round
    assert rounds[0].startswith("[0] ") and metadata["resumed_from_round"] is None
    # Every per-round line is parseable by the metric definitions the pipeline declares.
    for definition in METRIC_DEFINITIONS:
        if definition["Name"].split(":")[1] not in metadata["hyperparameters"].get("eval_metric", "auc"):
            continue
        values = re.findall(definition["Regex"], run.train_log)
        assert len(values) == len(rounds) + 1, definition  # every round, plus the final [model] line
        channel, metric = definition["Name"].split(":")
        assert float(values[-1]) == pytest.approx(metadata["metrics"][f"{channel}-{metric}"], abs=1e-6)
    return dict(metadata)


def check_evaluation(run: PipelineRun, metric: str, bar: float) -> dict[str, Any]:
    evaluation = run.evaluation
    block = evaluation["binary_classification_metrics"]
    for name in (
        "accuracy", "precision", "recall", "specificity", "f1", "f0_5", "f2", "auc", "pr_auc",
        "true_positive_rate", "true_negative_rate", "false_positive_rate", "false_negative_rate",
    ):  # fmt: skip
        assert set(block[name]) == {"value", "standard_deviation"}, name
        assert 0.0 <= block[name]["value"] <= 1.0
    matrix = block["confusion_matrix"]
    test_rows = csv_rows(run, "test")
    assert sum(matrix[a][p] for a in "01" for p in "01") == len(test_rows)
    assert matrix["1"]["1"] + matrix["1"]["0"] == int(test_rows[:, 0].sum())
    curve = block["receiver_operating_characteristic_curve"]
    assert curve["false_positive_rates"][0] == 0.0 and curve["true_positive_rates"][-1] == 1.0
    threshold = evaluation["decision_threshold"]
    assert threshold["chosen_on"] == "validation" and 0.0 <= threshold["value"] <= 1.0
    assert (
        threshold["operating_point"]
        == f"{'min_sensitivity' if metric == 'recall' else 'min_specificity'}:{bar:g}"
    )
    # What the pipeline's gate, the CLI and the demo read is where they look for it.
    for path in (*GATE_PATHS, THRESHOLD_PATH, THRESHOLD_RULE_PATH):
        assert value_at(evaluation, path) is not None, path
    point = evaluation["operating_point"]
    assert point["metric"] == metric and point["bar"] == bar
    assert point["value"] == block[metric]["value"]
    # Met unless the test rate's one-sided upper bound is below the bar.
    assert point["upper_bound"] >= point["value"] and point["confidence"] == 0.95
    assert point["met"] == int(point["upper_bound"] >= bar)
    assert "upper bound on the test split's" in point["rule"]
    # The threshold meets the bar on the data it was chosen on.
    bundle = ModelBundle.load(run.model_dir)
    val = read_split(
        run.preprocess.processing_output("validation"), "validation", len(bundle.preprocessor.feature_names)
    )
    predicted = bundle.predict(val.features) >= threshold["value"]
    actual = val.labels == 1
    achieved = (
        (predicted & actual).sum() / actual.sum()
        if metric == "recall"
        else (~predicted & ~actual).sum() / (~actual).sum()
    )
    assert achieved >= bar
    for png in ("roc.png", "confusion_matrix.png"):
        data = (run.evaluate.processing_output("evaluation") / png).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    return dict(evaluation)


@pytest.mark.xdist_group("image-penguins")
def test_penguins_preprocess_report_and_splits(penguins: PipelineRun) -> None:
    report = penguins.report
    assert report["rows"] == {"read": 344, "dropped_missing_target": 11, "dropped_duplicate": 0, "out": 333}
    assert report["files"]["read"] == 3
    assert report["files"]["skipped"][0]["path"].startswith("errors/")
    assert report["class_balance"]["counts"] == {"female": 165, "male": 168}
    assert report["class_balance"]["strongly_unbalanced"] is False
    assert set(report["missing_values"]) == set(PENGUINS_SCHEMA["numeric"]) | set(
        PENGUINS_SCHEMA["categorical"]
    )
    check_splits(penguins, PENGUINS_SCHEMA)


@pytest.mark.xdist_group("image-penguins")
def test_penguins_training_and_evaluation(penguins: PipelineRun) -> None:
    metadata = check_training(penguins, 40)
    assert metadata["dataset"] == "penguins" and metadata["positive_class"] == "female"
    evaluation = check_evaluation(penguins, "recall", 0.85)
    assert evaluation["binary_classification_metrics"]["auc"]["value"] > 0.85


@pytest.mark.xdist_group("image-penguins")
def test_penguins_endpoint_batch_transform_matches_the_job_encoding(
    penguins: PipelineRun, penguins_endpoint: Endpoint
) -> None:
    """test.jsonl through the endpoint (raw records) == the model on test.csv (encoded by preprocess)."""
    body = (penguins.preprocess.processing_output("inference") / "test.jsonl").read_bytes()
    status, media, data = post(penguins_endpoint.url, body, "application/jsonlines")
    assert status == 200 and media == "application/jsonlines"
    answers = [json.loads(line) for line in data.decode().splitlines()]
    bundle = ModelBundle.load(penguins.model_dir)
    test = csv_rows(penguins, "test")
    expected = bundle.predict(test[:, 1:].astype(np.float32))
    assert len(answers) == len(expected)
    assert [a["probability"] for a in answers] == pytest.approx(expected.tolist(), abs=1e-6)
    assert [a["label"] for a in answers] == ["female" if p >= 0.5 else "male" for p in expected]


@pytest.mark.xdist_group("image-penguins")
def test_penguins_endpoint_formats_agree(penguins_endpoint: Endpoint) -> None:
    records = [
        {"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181, "body_mass_g": 3750,
         "species": "Adelie", "island": "Torgersen", "sex": "male", "year": 2007},
        {"bill_length_mm": None, "bill_depth_mm": None, "flipper_length_mm": None, "body_mass_g": None,
         "species": "Gentoo", "island": None},
        {"bill_length_mm": "46.5", "bill_depth_mm": 13.5, "flipper_length_mm": 210, "body_mass_g": 4550,
         "species": "Gentoo", "island": "Biscoe"},
    ]  # fmt: skip
    csv_body = b"39.1,18.7,181,3750,Adelie,Torgersen\n,,,,Gentoo,\n46.5,13.5,210,4550,Gentoo,Biscoe\n"
    status, media, as_csv = post(penguins_endpoint.url, csv_body, "text/csv")
    assert status == 200 and media == "text/csv"
    csv_answers = [line.split(",") for line in as_csv.decode().splitlines()]
    status, media, as_json = post(penguins_endpoint.url, json.dumps(records).encode(), "application/json")
    assert status == 200 and media == "application/json"
    predictions = json.loads(as_json)["predictions"]
    assert [[str(p["probability"]), p["label"]] for p in predictions] == csv_answers
    jsonl = "\n".join(json.dumps(r) for r in records).encode()
    status, media, as_jsonl = post(
        penguins_endpoint.url, jsonl, "application/jsonlines; charset=utf-8", "application/json"
    )
    assert (
        status == 200 and media == "application/json" and json.loads(as_jsonl)["predictions"] == predictions
    )
    # One record (not a list) is one prediction; Accept picks the answer's format.
    status, media, one = post(
        penguins_endpoint.url, json.dumps(records[2]).encode(), "application/json", "text/csv"
    )
    assert status == 200 and media == "text/csv" and one.decode() == ",".join(csv_answers[2]) + "\n"
    # Batch transform with ContentType application/json and SplitType=Line: one JSON document per line.
    status, _, lines = post(penguins_endpoint.url, jsonl, "application/json")
    assert status == 200 and json.loads(lines)["predictions"] == predictions


@pytest.mark.xdist_group("image-penguins")
def test_decision_threshold_travels_by_environment(penguins: PipelineRun) -> None:
    """ROOKERY_DECISION_THRESHOLD overrides the model's default 0.5, on a single-worker endpoint."""
    body = (penguins.preprocess.processing_output("inference") / "test.jsonl").read_bytes()
    probabilities = np.sort(
        ModelBundle.load(penguins.model_dir).predict(csv_rows(penguins, "test")[:, 1:].astype(np.float32))
    )
    above = probabilities[probabilities >= 0.5]
    threshold = float(
        (above[len(above) // 2] + above[len(above) // 2 - 1]) / 2
    )  # flips about half the "female"s
    with serving(penguins.model_dir, workers=1, ROOKERY_DECISION_THRESHOLD=f"{threshold!r}") as endpoint:
        status, _, data = post(endpoint.url, body, "application/jsonlines")
    assert status == 200
    answers = [json.loads(line) for line in data.decode().splitlines()]
    assert all((a["label"] == "female") == (a["probability"] >= threshold) for a in answers)
    flipped = [a for a in answers if 0.5 <= a["probability"] < threshold]
    assert flipped and all(a["label"] == "male" for a in flipped)


@pytest.mark.xdist_group("image-loans")
def test_second_schema_is_configuration_not_code(loans: PipelineRun) -> None:
    report = loans.report
    assert report["dataset"] == "loans"
    assert report["rows"]["read"] == 1515
    assert report["rows"]["dropped_duplicate"] == 15
    assert report["rows"]["dropped_missing_target"] == len(range(0, 1500, 97))
    assert (
        report["missing_values"]["income"]["count"] > 0
        and report["missing_values"]["employment"]["count"] > 0
    )
    assert report["missing_values"]["debt_ratio"]["count"] > 0, "empty strings are missing values"
    assert report["invalid_values"]["counts"] == {}, "numbers sent as text are numbers"
    balance = report["class_balance"]
    assert balance["strongly_unbalanced"] is True
    train = report["split"]["train"]
    assert balance["suggested_scale_pos_weight"] == pytest.approx(
        (train["rows"] - train["positives"]) / train["positives"], abs=1e-4
    )
    assert report["split"]["fractions"] == [0.6, 0.2, 0.2] and report["split"]["seed"] == 3
    assert report["split"]["test"]["rows"] == pytest.approx(0.2 * report["rows"]["out"], abs=2)
    check_splits(loans, LOANS_SCHEMA)
    first = json.loads(
        (loans.preprocess.processing_output("inference") / "test.jsonl").read_text().splitlines()[0]
    )
    assert first["loan_id"].startswith("L"), "the id column travels with the batch-transform records"
    # --standardize true: numeric training columns have mean 0 and standard deviation 1.
    numeric = csv_rows(loans, "train")[:, 1:5]
    assert np.allclose(numeric.mean(axis=0), 0, atol=1e-3) and np.allclose(numeric.std(axis=0), 1, atol=1e-3)
    check_training(loans, 60)
    evaluation = check_evaluation(loans, "specificity", 0.9)
    assert evaluation["dataset"]["positive_class"] == "yes"
    assert evaluation["binary_classification_metrics"]["auc"]["value"] > 0.7


@pytest.mark.xdist_group("image-loans")
def test_second_schema_endpoint(loans: PipelineRun) -> None:
    record = {
        "loan_id": "X1", "income": 20000, "debt_ratio": 0.95, "age": "33", "credit_lines": 2,
        "region": "east", "employment": "unemployed", "defaulted": "no", "ingested_at": "2024-05-01",
    }  # fmt: skip
    with serving(loans.model_dir, workers=1) as endpoint:
        url = endpoint.url
        status, _, data = post(url, json.dumps(record).encode(), "application/json")
        assert status == 200
        (prediction,) = json.loads(data)["predictions"]
        assert prediction["label"] in ("yes", "no") and 0.0 <= prediction["probability"] <= 1.0
        status, _, data = post(url, b"20000,0.95,33,2,east,unemployed\n", "text/csv")
        assert status == 200 and data.decode().startswith(f"{prediction['probability']},")
        status, _, error = post(url, b"20000,0.95,33,2,mars,unemployed\n", "text/csv")
        assert status == 400 and json.loads(error)["field"] == "region"
