"""The pipeline's interface to the function that starts it: the parameter carrying the input data.

The pipeline definition declares it; the trigger Lambda fills it with ``s3://<raw bucket>/<dataset>/``.
"""

from __future__ import annotations

from typing import Final

INPUT_DATA_PARAMETER: Final = "InputDataUri"
