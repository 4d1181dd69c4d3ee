"""What every construct's props object shares: the error an invalid combination raises, and the checks
several constructs need (the name stem, log retention, role paths, S3 prefixes).

A props object is a frozen, keyword-only dataclass that validates itself in ``__post_init__``; every
failure is a ``PropsError`` naming the props class, the field, its value and the fix.
"""

from __future__ import annotations

import re
from typing import Final

from infra.constructs.log_groups import RETENTION

# ``<prefix>-<stage>``: the name stem of everything a stage creates (see ``stage.Stage.qualifier``).
_QUALIFIER: Final = re.compile(r"^[a-z][a-z0-9-]{2,40}$")
# An IAM path below the root: '/'-separated segments of printable ASCII, ending with '/' (IAM allows 512).
_ROLE_PATH: Final = re.compile(r"^/([\x21-\x2e\x30-\x7e]+/)+$")
_MAX_ROLE_PATH: Final = 512
_MAX_VALUE: Final = 120  # characters of a value's repr in a message


class PropsError(ValueError):
    """A construct's props are invalid: ``<Props>.<field> = <value>: <problem>; <fix>``."""

    def __init__(self, props: object, field: str, problem: str) -> None:
        if not hasattr(props, field):
            raise AttributeError(f"{type(props).__name__} has no field {field!r}")
        self.props = type(props).__name__
        self.field = field
        value = repr(getattr(props, field))
        if len(value) > _MAX_VALUE:
            value = f"{value[: _MAX_VALUE - 3]}..."
        super().__init__(f"{self.props}.{field} = {value}: {problem}")


def check_qualifier(props: object, field: str = "qualifier") -> None:
    """Descriptions, aliases and names start with the qualifier: lower-case letters, digits and '-'."""
    value = getattr(props, field)
    if not isinstance(value, str) or not _QUALIFIER.match(value):
        raise PropsError(
            props,
            field,
            "must be 3-41 lower-case letters, digits or '-', starting with a letter; "
            "pass the stage's qualifier, e.g. 'rookery-dev'",
        )


def check_retention(props: object, field: str = "log_retention_days") -> None:
    """CloudWatch Logs accepts only a fixed set of retention periods."""
    if getattr(props, field) not in RETENTION:
        raise PropsError(props, field, f"CloudWatch Logs accepts only {sorted(RETENTION)} days; pick one")


def role_path_problem(path: str) -> str | None:
    """Why ``path`` cannot hold a role of one stage, or None.

    Policies trust a stage's roles by path (``role/<path>*``), so the root path ``/`` (every role of
    the account) is refused.
    """
    if len(path) > _MAX_ROLE_PATH or not _ROLE_PATH.match(path):
        return (
            "a role path is trusted as a whole, so it must be the stage's own: '/'-separated segments "
            "ending with '/' (not '/' alone, which is every role of the account), e.g. "
            "'/rookery-dev/sagemaker-execution/'"
        )
    return None


def check_role_path(props: object, field: str = "role_path") -> None:
    problem = role_path_problem(getattr(props, field))
    if problem:
        raise PropsError(props, field, problem)


def check_prefix(props: object, field: str) -> None:
    """An S3 key prefix such as ``penguins/``: not empty, no leading '/', ends with '/'."""
    value = getattr(props, field)
    if not value or value.startswith("/") or not value.endswith("/"):
        raise PropsError(
            props, field, "must be an S3 key prefix like 'penguins/' (no leading '/', ends with '/')"
        )
