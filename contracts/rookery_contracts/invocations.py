"""What one endpoint invocation may carry, for everything that answers one.

The model server in the image and the local endpoint's front end both answer 413 above
:data:`MAX_PAYLOAD_BYTES`, SageMaker's limit for a real-time and a batch-transform payload.
"""

from __future__ import annotations

from typing import Final

MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
