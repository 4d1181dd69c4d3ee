"""Property paths as the SDK writes them (``Steps.Preprocess.ProcessingOutputConfig.Outputs['train']
.S3Output.S3Uri``, ``Steps.Tune.TrainingJobSummaries[0]...``), read into tokens and written back."""

from __future__ import annotations

import re
from typing import Final

_TOKEN: Final = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_STEP_REFERENCE: Final = re.compile(r"^Steps\.([A-Za-z0-9_\-]+)(.*)$")

Token = str | int | tuple[str]  # member name, list index, or ('key',) for a keyed lookup


def tokens(path: str) -> list[Token]:
    """``A.B['x'][0].C`` -> ``['A', 'B', ('x',), 0, 'C']``; ValueError when the text is not a path."""
    found: list[Token] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot read {path!r} at {path[pos:]!r}")
        name, index, key1, key2 = match.groups()
        if name is not None:
            found.append(name)
        elif index is not None:
            found.append(int(index))
        else:
            found.append((key1 if key1 is not None else key2,))
        pos = match.end()
    return found


def split_step_reference(reference: str) -> tuple[str, list[Token]]:
    """``Steps.X.a.b`` -> ``("X", ["a", "b"])``; ValueError for anything else."""
    match = _STEP_REFERENCE.match(reference)
    if match is None:
        raise ValueError(f"{reference!r} is not a step reference (Steps.<name>.<property>)")
    rest = match.group(2)
    return match.group(1), tokens(rest) if rest else []


def show(path: list[Token]) -> str:
    """The tokens written back as a path (``A.B['x'][0]``)."""
    out = ""
    for token in path:
        if isinstance(token, int):
            out += f"[{token}]"
        elif isinstance(token, tuple):
            out += f"['{token[0]}']"
        else:
            out += f".{token}" if out else token
    return out
