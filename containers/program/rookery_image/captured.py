"""Reading an endpoint's data capture: files of JSON lines, one captured invocation per line.

SageMaker writes ``<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl`` under the capture prefix, each
line ``{"captureData": {"endpointInput": {...}, "endpointOutput": {...}}, "eventMetadata": {...},
"eventVersion": "0"}``, a payload's ``data`` being text (``CSV``/``JSON`` encoding) or base64
(``BASE64``). The monitor reads a window of them a line at a time. Whatever cannot be read (an empty
file, a truncated or corrupt line, a file of another endpoint, a payload of a content type the
endpoint does not accept, a CSV record of the wrong width) becomes an :class:`Issue` in the report,
never a failed job: one bad file must not hide the drift in the others.
"""

from __future__ import annotations

import base64
import binascii
import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

CSV_TYPES: Final = ("text/csv",)
JSON_TYPES: Final = ("application/json",)
JSON_LINES_TYPES: Final = ("application/jsonlines", "application/jsonl", "application/x-jsonlines")
ACCEPTED: Final = CSV_TYPES + JSON_TYPES + JSON_LINES_TYPES
# Issues listed per file and kind before the rest are only counted.
MAX_EXAMPLES: Final = 5


@dataclass
class Issue:
    """Something in one capture file the monitor could not use, and how many lines it affected."""

    file: str
    problem: str
    lines: int = 1
    examples: list[int] = field(default_factory=list)  # line numbers

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "problem": self.problem,
            "lines": self.lines,
            "example_lines": self.examples,
        }


@dataclass(frozen=True)
class Invocation:
    """One captured invocation: its records (field -> value) and what identifies it."""

    records: list[dict[str, Any]]
    output: Mapping[str, Any] | None
    inference_id: str | None
    event_id: str | None
    ground_truth: Mapping[str, Any] | None  # present when SageMaker merged ground truth in

    @property
    def join_id(self) -> str | None:
        """What ground truth names this invocation by: the caller's inference id, else the event id."""
        return self.inference_id or self.event_id


def media_type(content_type: object) -> str:
    return str(content_type or "").split(";", 1)[0].strip().lower()


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    """The bytes of a capture payload; ValueError when its data or encoding is unusable."""
    data = payload.get("data")
    if not isinstance(data, str):
        raise ValueError("the payload has no 'data' text")
    encoding = payload.get("encoding")
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"the payload is not valid base64 ({exc})") from None
    if encoding in ("CSV", "JSON"):
        return data.encode("utf-8")
    raise ValueError(f"the payload's encoding {encoding!r} is not CSV, JSON or BASE64")


def decode_records(
    body: bytes, content_type: str, columns: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """The records of a request body as field -> value, and how many CSV rows had the wrong width.

    ValueError when the body is not of its content type at all.
    """
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if content_type in CSV_TYPES:
        rows = (
            list(csv.reader(text.splitlines()))
            if '"' in text
            else [line.split(",") for line in text.splitlines()]
        )
        width = len(columns)
        good = [dict(zip(columns, row, strict=True)) for row in rows if len(row) == width]
        bad = sum(1 for row in rows if len(row) != width and any(cell.strip() for cell in row))
        return good, bad
    if content_type in JSON_TYPES:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            items = [orjson.loads(line) for line in body.splitlines() if line.strip()]
        else:
            items = document if isinstance(document, list) else [document]
    else:
        items = [orjson.loads(line) for line in body.splitlines() if line.strip()]
    found = [item for item in items if isinstance(item, dict)]
    if len(found) != len(items):
        raise ValueError("a record is not a JSON object of field -> value")
    return found, 0


class CaptureReader:
    """Every invocation captured under ``folder``, streamed file by file, line by line.

    ``endpoint``: files under another endpoint's folder are reported and skipped. After the pass,
    ``files`` and ``issues`` say what was read and what was not.
    """

    def __init__(self, folder: Path, *, columns: Sequence[str], endpoint: str | None = None) -> None:
        self.folder = folder
        self.columns = tuple(columns)
        self.endpoint = endpoint
        self.files: list[str] = []
        self.issues: list[Issue] = []

    def _issue(self, shown: str, problem: str, line: int, found: dict[str, Issue]) -> None:
        issue = found.get(problem)
        if issue is None:
            issue = found[problem] = Issue(shown, problem, 0)
            self.issues.append(issue)
        issue.lines += 1
        if len(issue.examples) < MAX_EXAMPLES:
            issue.examples.append(line)

    def paths(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(
            p
            for p in self.folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.folder).parts)
        )

    def __iter__(self) -> Iterator[Invocation]:
        for path in self.paths():
            shown = path.relative_to(self.folder).as_posix()
            owner = shown.split("/", 1)[0] if "/" in shown else None
            if self.endpoint and owner is not None and owner != self.endpoint:
                self.issues.append(
                    Issue(shown, f"captured by endpoint {owner!r}, not {self.endpoint!r}: skipped", 0)
                )
                continue
            if path.stat().st_size == 0:
                self.issues.append(Issue(shown, "empty file: no captured invocation", 0))
                continue
            self.files.append(shown)
            yield from self._read(path, shown)

    def _read(self, path: Path, shown: str) -> Iterator[Invocation]:
        found: dict[str, Issue] = {}
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    truncated = not line.endswith(b"\n")
                    problem = "truncated line (the file ends mid-record)" if truncated else "line is not JSON"
                    self._issue(shown, problem, number, found)
                    continue
                invocation = self._invocation(event, shown, number, found)
                if invocation is not None:
                    yield invocation

    def _invocation(
        self, event: object, shown: str, number: int, found: dict[str, Issue]
    ) -> Invocation | None:
        capture = event.get("captureData") if isinstance(event, dict) else None
        request = capture.get("endpointInput") if isinstance(capture, dict) else None
        if not isinstance(request, dict):
            self._issue(shown, "not a capture record (no captureData.endpointInput)", number, found)
            return None
        content_type = media_type(request.get("observedContentType"))
        if content_type not in ACCEPTED:
            self._issue(
                shown,
                f"unexpected content type {content_type or '(none)'!r} "
                f"(the endpoint accepts {', '.join(ACCEPTED)})",
                number,
                found,
            )
            return None
        try:
            rows, bad = decode_records(payload_bytes(request), content_type, self.columns)
        except ValueError as exc:
            self._issue(shown, f"unreadable {content_type} request: {exc}", number, found)
            return None
        if bad:
            self._issue(shown, f"CSV record(s) without exactly {len(self.columns)} fields", number, found)
        metadata = event.get("eventMetadata") if isinstance(event, dict) else None
        metadata = metadata if isinstance(metadata, dict) else {}
        output = capture.get("endpointOutput") if isinstance(capture, dict) else None
        truth = event.get("groundTruthData") if isinstance(event, dict) else None
        return Invocation(
            records=rows,
            output=output if isinstance(output, dict) else None,
            inference_id=_text(metadata.get("inferenceId")),
            event_id=_text(metadata.get("eventId")),
            ground_truth=truth if isinstance(truth, dict) else None,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
