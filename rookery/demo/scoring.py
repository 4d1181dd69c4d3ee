"""Score the test split over HTTP as a client would: boto3 ``sagemaker-runtime`` against a local endpoint.

The test split's raw records (Preprocess's ``inference/test.jsonl``, in ``test.csv`` order) are
sent in batches with ``invoke_endpoint`` (``application/jsonlines`` in and out), and the answers are
compared with the labels (``test.csv``'s first column, 1 = the positive class) and with the batch
transform's output for the same rows (``test.jsonl.out``): the same model behind the same serving
code must agree record for record.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from emulators.sagemaker_runtime.client import runtime_client

BATCH_RECORDS: Final = 100
CONTENT_TYPE: Final = "application/jsonlines"
# Probabilities travel as JSON numbers; two answers for one record may differ only by float noise.
PROBABILITY_TOLERANCE: Final = 1e-6


class ScoringError(RuntimeError):
    """Scoring could not be done or its inputs disagree; the message names the file or the request."""


@dataclass(frozen=True)
class Prediction:
    probability: float
    label: str


def parse_predictions(lines: str, *, source: str) -> list[Prediction]:
    """``{"probability": p, "label": l}`` per line (the serve entrypoint's jsonlines answer)."""
    out = []
    for number, line in enumerate(lines.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            out.append(Prediction(float(item["probability"]), str(item["label"])))
        except (ValueError, KeyError, TypeError):
            raise ScoringError(f"{source} line {number} is not a prediction: {line[:120]!r}") from None
    return out


def read_labels(test_csv: str, *, positive: str, negative: str) -> list[str]:
    """Class names from Preprocess's ``test.csv`` (label first, 1 = positive)."""
    labels = []
    for number, line in enumerate(test_csv.splitlines(), start=1):
        if not line.strip():
            continue
        flag = line.split(",", 1)[0].strip()
        if flag not in ("0", "1", "0.0", "1.0"):
            raise ScoringError(f"test.csv line {number} does not start with a 0/1 label: {line[:60]!r}")
        labels.append(positive if float(flag) == 1 else negative)
    return labels


def invoke_in_batches(
    client: Any, endpoint_name: str, records: Sequence[str], *, batch: int = BATCH_RECORDS
) -> tuple[list[Prediction], int]:
    """Send ``records`` (JSON lines) ``batch`` at a time; the predictions in order and the request count."""
    predictions: list[Prediction] = []
    requests = 0
    for start in range(0, len(records), batch):
        body = "".join(f"{r}\n" for r in records[start : start + batch])
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=body.encode("utf-8"),
            ContentType=CONTENT_TYPE,
            Accept=CONTENT_TYPE,
        )
        requests += 1
        answer = parse_predictions(response["Body"].read().decode("utf-8"), source=f"request {requests}")
        if len(answer) != len(records[start : start + batch]):
            raise ScoringError(
                f"request {requests} sent {len(records[start : start + batch])} records and got "
                f"{len(answer)} predictions; the endpoint must answer one prediction per record"
            )
        predictions.extend(answer)
    return predictions, requests


@dataclass(frozen=True)
class Scoring:
    """HTTP predictions of the test split compared with the labels and with batch transform."""

    endpoint_url: str
    endpoint_name: str
    records: int
    requests: int
    seconds: float
    positive_class: str
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int
    transform_rows: int
    labels_agreeing_with_transform: int
    max_probability_difference: float

    @property
    def correct(self) -> int:
        return self.true_positives + self.true_negatives

    @property
    def accuracy(self) -> float:
        return self.correct / self.records if self.records else math.nan

    @property
    def agrees_with_transform(self) -> bool:
        return (
            self.transform_rows == self.records
            and self.labels_agreeing_with_transform == self.records
            and self.max_probability_difference <= PROBABILITY_TOLERANCE
        )

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else math.inf


def compare(
    http: Sequence[Prediction],
    labels: Sequence[str],
    transform: Sequence[Prediction],
    *,
    positive_class: str,
    endpoint_url: str,
    endpoint_name: str,
    requests: int,
    seconds: float,
) -> Scoring:
    """Tally ``http`` against the true ``labels`` and the ``transform`` output, row by row."""
    if len(http) != len(labels):
        raise ScoringError(
            f"{len(http)} HTTP predictions for {len(labels)} labelled test rows; inference/test.jsonl and "
            "test.csv must hold the same rows in the same order"
        )
    pairs = [
        (p.label == positive_class, truth == positive_class) for p, truth in zip(http, labels, strict=True)
    ]
    same = sum(1 for a, b in zip(http, transform, strict=False) if a.label == b.label)
    diff = max(
        (abs(a.probability - b.probability) for a, b in zip(http, transform, strict=False)), default=0.0
    )
    return Scoring(
        endpoint_url=endpoint_url,
        endpoint_name=endpoint_name,
        records=len(http),
        requests=requests,
        seconds=seconds,
        positive_class=positive_class,
        true_positives=sum(1 for p, t in pairs if p and t),
        false_positives=sum(1 for p, t in pairs if p and not t),
        true_negatives=sum(1 for p, t in pairs if not p and not t),
        false_negatives=sum(1 for p, t in pairs if not p and t),
        transform_rows=len(transform),
        labels_agreeing_with_transform=same,
        max_probability_difference=diff,
    )


def score_test_split(
    *,
    endpoint_url: str,
    endpoint_name: str,
    region: str,
    records: Sequence[str],
    labels: Sequence[str],
    transform: Sequence[Prediction],
    positive_class: str,
) -> Scoring:
    """Invoke the endpoint for every test record and compare (see :func:`compare`)."""
    client = runtime_client(endpoint_url, region)
    started = time.monotonic()
    http, requests = invoke_in_batches(client, endpoint_name, records)
    seconds = time.monotonic() - started
    return compare(
        http,
        labels,
        transform,
        positive_class=positive_class,
        endpoint_url=endpoint_url,
        endpoint_name=endpoint_name,
        requests=requests,
        seconds=seconds,
    )
