"""The steps as a graph: uniquely and validly named, each waiting for what it reads, without a cycle.

A step waits for the steps it names in ``DependsOn``, the steps whose properties and property files
it reads, and the condition whose branch holds it: the DAG SageMaker (and the local engine) runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pipelines.definition import iter_steps, own_arguments, references, steps_by_name
from pipelines.reading.problem import Problem

# SageMaker's step names (the pipeline definition JSON schema's StepName).
STEP_NAME: Final = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")


def dependencies(definition: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Step name -> the steps it waits for: ``DependsOn``, step properties and property files it
    reads, and the condition whose branch holds it."""
    names = set(steps_by_name(definition))
    graph: dict[str, frozenset[str]] = {}

    def visit(steps: Iterable[Mapping[str, Any]], parent: str | None) -> None:
        for step in steps:
            name = str(step.get("Name"))
            needs = {d for d in step.get("DependsOn", []) or [] if isinstance(d, str)}
            for target in references(own_arguments(step)):
                head, _, rest = target.partition(".")
                step_name = rest.split(".", 1)[0].split("[", 1)[0]
                if head == "Steps" and step_name in names:
                    needs.add(step_name)
            if parent is not None:
                needs.add(parent)
            graph[name] = frozenset(needs - {name})
            if step.get("Type") == "Condition":
                args = step.get("Arguments", {})
                visit(args.get("IfSteps", []), name)
                visit(args.get("ElseSteps", []), name)

    visit(definition.get("Steps", []), None)
    return graph


def step_name_problems(definition: Mapping[str, Any]) -> list[Problem]:
    """Every step (the branches of a condition included) has a valid name no other step has."""
    problems = []
    seen: set[str] = set()
    for i, step in enumerate(iter_steps(definition.get("Steps") or [])):
        name = step.get("Name")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            problems.append(
                Problem(
                    str(name),
                    f"Steps[{i}].Name",
                    f"{name!r} is not a step name",
                    "step names are 1-64 letters, digits, '-', '_'",
                )
            )
        elif name in seen:
            problems.append(
                Problem(name, "Name", "two steps have this name", "step names must be unique; rename one")
            )
        seen.add(str(name))
    return problems


def dependency_problems(definition: Mapping[str, Any]) -> list[Problem]:
    """Every ``DependsOn`` names a step of the definition, and no step waits for itself."""
    names = list(steps_by_name(definition))
    problems = []
    for step in iter_steps(definition.get("Steps") or []):
        for dependency in step.get("DependsOn", []) or []:
            if isinstance(dependency, str) and dependency not in names:
                problems.append(
                    Problem(
                        str(step.get("Name")),
                        "DependsOn",
                        f"depends on unknown step {dependency!r}",
                        f"name one of the definition's steps: {', '.join(names)}",
                    )
                )
    return problems + _cycles(dependencies(definition))


def _cycles(graph: Mapping[str, frozenset[str]]) -> list[Problem]:
    problems = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = " -> ".join([*trail[trail.index(node) :], node])
            problems.append(
                Problem(
                    node,
                    "DependsOn",
                    f"steps depend on each other in a cycle: {cycle}",
                    "remove one of the cycle's dependencies (a DependsOn, a property it reads, or the "
                    "condition branch that holds it)",
                )
            )
            return
        state[node] = 1
        for dependency in sorted(graph.get(node, ())):
            visit(dependency, [*trail, node])
        state[node] = 2

    for node in graph:
        visit(node, [])
    return problems
