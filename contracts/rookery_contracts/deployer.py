"""The deployer state machine's contract: the state its Lambda tasks pass along and what it routes on.

The state machine (``infra.constructs.deployer``) and its functions (``lambdas/model_deployer``) are
built apart and meet only here: every task takes the whole state and returns it with ``next`` set to
one of :class:`Next`, and the state machine's Choice states route on that field alone. The bounds
of every wait loop travel in the state (``limits``), written once by the state machine's first state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Task(StrEnum):
    """The state machine's Lambda tasks; each is ``model_deployer.handler``'s handler of that name."""

    DECIDE = "decide"  # re-read the registry and the Serving stack: what should the endpoint serve?
    UPDATE = "update"  # UpdateStack with the new model parameter (previous template, other values kept)
    POLL = "poll"  # DescribeStacks until the update leaves *_IN_PROGRESS
    VERIFY = "verify"  # the live endpoint: InService on the requested model package?
    PUBLISH = "publish"  # the outcome as an EventBridge event and a CloudWatch metric


class Next(StrEnum):
    """Where a task sends the execution (the value of ``state["next"]``)."""

    WAIT = "wait"  # the stack is busy with another update: wait, then decide again
    UPDATE = "update"
    POLL = "poll"  # wait, then poll the stack again
    VERIFY = "verify"
    PUBLISH = "publish"
    DECIDE = "decide"  # decide again at once (the update found nothing to change, or after a success)
    DONE = "done"  # converged: the execution succeeds (the deployment was published already)
    FAIL = "fail"  # the published outcome is a failure: the execution fails


class Limit(StrEnum):
    """The keys of ``state["limits"]``."""

    WAIT_SECONDS = "wait_seconds"  # seconds between two looks at a busy or updating stack
    BUSY_CHECKS = "busy_checks"  # how often a busy stack is looked at before giving up
    POLLS = "polls"  # how often an update is polled before giving up
    DEPLOYMENTS = "deployments"  # stack updates one execution may start before giving up


NEXT_KEY: Final = "next"
LIMITS_KEY: Final = "limits"
# Set by the state machine's first state from its context object, read by the tasks.
EXECUTION_KEY: Final = "execution"
STARTED_KEY: Final = "started"
TRIGGER_KEY: Final = "trigger"
# Where a task's error lands when the state machine catches it (the publish task reports it).
ERROR_KEY: Final = "error"
