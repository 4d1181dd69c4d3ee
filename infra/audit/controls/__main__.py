"""Print ``docs/controls.md``: ``python -m infra.audit.controls > docs/controls.md``."""

from __future__ import annotations

import sys

from infra.audit.controls import render_markdown
from infra.audit.rules import ROOKERY_RULES

sys.stdout.write(render_markdown(ROOKERY_RULES))
