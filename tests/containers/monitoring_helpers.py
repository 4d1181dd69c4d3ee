"""Synthetic traffic for the monitoring tests: a schema, training rows, capture files as the endpoint
writes them (``emulators.sagemaker_runtime.capture``'s records) and ground truth in SageMaker's format.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emulators.sagemaker_runtime.capture import Captured, capture_record
from rookery_contracts.schema import DatasetSchema, schema_from_mapping

SCHEMA_FIELDS: dict[str, Any] = {
    "name": "shop",
    "target": "churned",
    "positive_class": "yes",
    "numeric": ["spend", "visits"],
    "categorical": ["plan", "region"],
    "id_column": None,
}
SCHEMA: DatasetSchema = schema_from_mapping(SCHEMA_FIELDS)
ENDPOINT = "rookery-dev-endpoint"
DRIFT = {
    "numeric_psi": 0.2,
    "categorical_linf": 0.1,
    "missing_rate_increase": 0.05,
    "invalid_share": 0.01,
    "unknown_category_share": 0.01,
}
QUALITY = {"max_drop": 0.1, "min_labelled_records": 20}
PLANS = ("basic", "plus", "pro")
REGIONS = ("north", "south", "east", "west")

Row = dict[str, Any]


def rows(n: int, seed: int, *, change: Callable[[Row, np.random.Generator], None] | None = None) -> list[Row]:
    """``n`` records of one fixed distribution (5% of spend missing); ``change`` edits each one."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        row: Row = {
            "spend": None if rng.random() < 0.05 else round(float(rng.normal(100, 20)), 2),
            "visits": int(rng.poisson(6)),
            "plan": str(rng.choice(PLANS, p=[0.5, 0.3, 0.2])),
            "region": str(rng.choice(REGIONS)),
        }
        if change is not None:
            change(row, rng)
        out.append(row)
    return out


def captured_line(
    body: bytes,
    content_type: str,
    *,
    answer: bytes = b'{"predictions": []}',
    answer_type: str = "application/json",
    inference_id: str | None = None,
) -> str:
    item = Captured(
        request_type=content_type,
        request=body,
        response_type=answer_type,
        response=answer,
        inference_time=dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC),
        inference_id=inference_id,
    )
    return json.dumps(capture_record(item, str(uuid.uuid4()))) + "\n"


def capture_folder(root: Path, endpoint: str = ENDPOINT) -> Path:
    folder = root / endpoint / "primary" / "2026" / "12" / "03" / "10"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_capture(
    root: Path,
    records: Sequence[Mapping[str, Any]],
    *,
    per_request: int = 10,
    name: str = "00-00-000-a.jsonl",
) -> Path:
    """Records as JSON-lines requests of ``per_request`` records each, in one capture file."""
    path = capture_folder(root) / name
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, len(records), per_request):
            chunk = records[start : start + per_request]
            body = b"".join(json.dumps(r).encode() + b"\n" for r in chunk)
            out.write(captured_line(body, "application/jsonlines"))
    return path


def write_predictions(
    root: Path, scored: Sequence[tuple[Mapping[str, Any], float]], name: str = "00-00-000-p.jsonl"
) -> list[str]:
    """One JSON request per record, answered with its probability; returns the inference ids."""
    ids = []
    path = capture_folder(root) / name
    with path.open("w", encoding="utf-8") as out:
        for k, (record, probability) in enumerate(scored):
            inference_id = f"req-{k}"
            ids.append(inference_id)
            answer = json.dumps({"predictions": [{"probability": probability, "label": "x"}]}).encode()
            out.write(
                captured_line(
                    json.dumps(record).encode(), "application/json", answer=answer, inference_id=inference_id
                )
            )
    return ids


def write_ground_truth(folder: Path, labels: Mapping[str, str]) -> Path:
    """Ground truth as SageMaker's merge reads it: one JSON line per labelled inference."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for key, label in labels.items():
            entry = {
                "groundTruthData": {"data": label, "encoding": "CSV"},
                "eventMetadata": {"eventId": key},
                "eventVersion": "0",
            }
            out.write(json.dumps(entry) + "\n")
    return path
