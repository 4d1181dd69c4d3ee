"""A small in-process runner for the subset of the Amazon States Language the deployer's definition uses.

moto executes Step Functions only without Lambda tasks (those need Docker), so the flow is proven here:
the definition is read from the synthesized template, each Task's function is the real handler its
template resource names, and every Wait passes at once (its seconds are recorded). Supported, as the
States Language specifies them: Pass (``Parameters`` with ``.$`` paths, including ``$$.Execution``),
Task (a Lambda ARN as ``Resource``, ``Retry``, ``Catch`` with ``ResultPath``), Choice (``StringEquals``
on a ``Variable``, ``Default``), Wait (``Seconds``), Succeed, Fail (``Error``/``Cause``/``CausePath``).
Anything else fails loudly, naming the field, so the runner can never silently skip what the
definition asks for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_STATE_FIELDS = {
    "Pass": {"Type", "Comment", "Parameters", "Next", "End"},
    "Task": {"Type", "Comment", "Resource", "Retry", "Catch", "Next", "End"},
    "Choice": {"Type", "Comment", "Choices", "Default"},
    "Wait": {"Type", "Comment", "Seconds", "Next", "End"},
    "Succeed": {"Type", "Comment"},
    "Fail": {"Type", "Comment", "Error", "Cause", "CausePath", "ErrorPath"},
}


class UnsupportedError(NotImplementedError):
    """The definition uses something this runner does not implement."""


class TaskError(Exception):
    """How a Lambda task fails in Step Functions: ``Error`` is the error type, ``Cause`` a JSON text."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def resolve_definition(definition_string: Any, arn_of: Callable[[str], str]) -> dict[str, Any]:
    """The definition JSON from a ``DefinitionString`` (``Fn::Join`` of text and ``Fn::GetAtt``)."""
    if isinstance(definition_string, str):
        return dict(json.loads(definition_string))
    [separator, parts] = definition_string["Fn::Join"]
    text = []
    for part in parts:
        if isinstance(part, str):
            text.append(part)
        elif isinstance(part, Mapping) and "Fn::GetAtt" in part and part["Fn::GetAtt"][1] == "Arn":
            text.append(arn_of(part["Fn::GetAtt"][0]))
        else:
            raise UnsupportedError(f"definition part {part!r}")
    return dict(json.loads(separator.join(text)))


def read_path(data: Any, path: str, context: Mapping[str, Any]) -> Any:
    """A reference path: ``$``, ``$.a.b`` or ``$$.Execution.Name`` (no brackets, no filters)."""
    if path.startswith("$$"):
        data, path = context, "$" + path[2:]
    if path == "$":
        return data
    if not path.startswith("$.") or "[" in path:
        raise UnsupportedError(f"path {path!r}")
    for key in path[2:].split("."):
        if not isinstance(data, Mapping) or key not in data:
            raise TaskError("States.Runtime", f"path {path!r} does not exist in the input")
        data = data[key]
    return data


def write_path(data: Any, path: str, value: Any) -> Any:
    """A ResultPath: ``$`` replaces the input, ``$.a.b`` sets a field of a copy."""
    if path == "$":
        return value
    if not path.startswith("$.") or "[" in path:
        raise UnsupportedError(f"result path {path!r}")
    result = json.loads(json.dumps(data))
    here = result
    *parents, last = path[2:].split(".")
    for key in parents:
        here = here.setdefault(key, {})
    here[last] = value
    return result


def _parameters(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(template, Mapping):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = read_path(data, value, context)
            else:
                out[key] = _parameters(value, data, context)
        return out
    if isinstance(template, list):
        return [_parameters(v, data, context) for v in template]
    return template


def _matches(errors: Iterable[str], error: str) -> bool:
    for name in errors:
        if name in ("States.ALL", error):
            return True
        if name == "States.TaskFailed" and error != "States.Timeout":
            return True
    return False


@dataclass
class Execution:
    """One execution of a definition: ``step()`` runs one state, ``run()`` runs to the end."""

    definition: Mapping[str, Any]
    handlers: Mapping[str, Handler]  # by the Task's Resource (a function ARN)
    input: Any
    name: str
    start_time: str = "2024-05-01T12:00:00Z"
    status: str = "RUNNING"
    state: str = ""
    data: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[str] = field(default_factory=list)
    waited: list[int] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)  # task invocations, retries included

    def __post_init__(self) -> None:
        for name, state in self.definition["States"].items():
            unknown = set(state) - _STATE_FIELDS.get(state["Type"], set())
            if state["Type"] not in _STATE_FIELDS or unknown:
                raise UnsupportedError(
                    f"state {name!r} ({state['Type']}) uses {sorted(unknown) or state['Type']}"
                )
        self.state = self.definition["StartAt"]
        self.data = self.input

    @property
    def context(self) -> dict[str, Any]:
        return {"Execution": {"Name": self.name, "StartTime": self.start_time, "Input": self.input}}

    def run(self, max_steps: int = 5000) -> Execution:
        for _ in range(max_steps):
            if self.status != "RUNNING":
                return self
            self.step()
        raise AssertionError(f"{self.name} did not finish in {max_steps} states: {self.history[-20:]}")

    def step(self) -> None:
        name = self.state
        spec = self.definition["States"][name]
        self.history.append(name)
        kind = spec["Type"]
        if kind == "Pass":
            if "Parameters" in spec:
                self.data = _parameters(spec["Parameters"], self.data, self.context)
            self._advance(spec)
        elif kind == "Task":
            self._task(name, spec)
        elif kind == "Choice":
            self.state = self._choose(spec)
        elif kind == "Wait":
            self.waited.append(int(spec["Seconds"]))
            self._advance(spec)
        elif kind == "Succeed":
            self.status = "SUCCEEDED"
        elif kind == "Fail":
            self.status = "FAILED"
            self.error = spec.get("Error") or (
                read_path(self.data, spec["ErrorPath"], self.context) if "ErrorPath" in spec else None
            )
            self.cause = spec.get("Cause") or (
                read_path(self.data, spec["CausePath"], self.context) if "CausePath" in spec else None
            )

    def _advance(self, spec: Mapping[str, Any]) -> None:
        if spec.get("End"):
            self.status = "SUCCEEDED"
        else:
            self.state = spec["Next"]

    def _task(self, name: str, spec: Mapping[str, Any]) -> None:
        handler = self.handlers[spec["Resource"]]
        retries = [dict(r, used=0) for r in spec.get("Retry", [])]
        while True:
            self.attempts[name] = self.attempts.get(name, 0) + 1
            try:
                result = handler(json.loads(json.dumps(self.data)))
            except Exception as raised:  # a Lambda's error, as Step Functions sees it
                error = TaskError(
                    type(raised).__name__,
                    json.dumps({"errorMessage": str(raised), "errorType": type(raised).__name__}),
                )
                retry = next((r for r in retries if _matches(r["ErrorEquals"], error.error)), None)
                if retry is not None and retry["used"] < retry.get("MaxAttempts", 3):
                    retry["used"] += 1
                    continue
                catch = next(
                    (c for c in spec.get("Catch", []) if _matches(c["ErrorEquals"], error.error)), None
                )
                if catch is None:
                    self.status, self.error, self.cause = "FAILED", error.error, error.cause
                    return
                caught = {"Error": error.error, "Cause": error.cause}
                self.data = write_path(self.data, catch.get("ResultPath", "$"), caught)
                self.state = catch["Next"]
                return
            self.data = json.loads(json.dumps(result))
            self._advance(spec)
            return

    def _choose(self, spec: Mapping[str, Any]) -> str:
        for choice in spec["Choices"]:
            unknown = set(choice) - {"Variable", "StringEquals", "Next"}
            if unknown:
                raise UnsupportedError(f"choice rule with {sorted(unknown)}")
            value = read_path(self.data, choice["Variable"], self.context)
            if value == choice["StringEquals"]:
                return str(choice["Next"])
        if "Default" not in spec:
            raise TaskError("States.NoChoiceMatched", f"no choice matched {self.data!r}")
        return str(spec["Default"])
