"""The serving part of a stage: the endpoint, how a new model version reaches it, its alarms and API.

Pure pydantic, like the rest of the stage model. The Serving stack, the AWS deployer and the local
endpoint all read these values, so a canary, a bake time or an alarm threshold means the same thing
on AWS and on one machine. Every rule SageMaker would only enforce at deploy time (canary sizes,
timeouts, KMS on instance storage) is checked here, when the stage is loaded.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")

# Instance families whose storage is local NVMe instance storage. SageMaker encrypts it with a
# hardware module and rejects an endpoint config that names a volume KMS key for them
# (CreateEndpointConfig fails), so the key is left out only for these, and only when the stage says
# so explicitly. An explicit table, not a guess from the name: "d" in a family name is not a rule.
# Source: the SageMaker hosting instance types with instance store volumes (EC2 instance types page).
INSTANCE_STORAGE_FAMILIES: Final = frozenset(
    {
        "c5d", "c6id", "m5d", "m6id", "r5d", "r6id", "c6gd", "m6gd", "r6gd", "x2idn",
        "g4dn", "g5", "g6", "g6e", "gr6", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en",
        "trn1", "trn1n", "inf2",
    }
)  # fmt: skip

# The time SageMaker takes to provision a new fleet before a blue/green deployment can shift any
# traffic (instance start, image pull, model load); the deployment's MaximumExecutionTimeout must
# leave room for it on top of every wait it configures.
PROVISIONING_ALLOWANCE_SECONDS: Final = 900
# SageMaker's limits for a blue/green update policy.
MIN_EXECUTION_TIMEOUT: Final = 600
MAX_EXECUTION_TIMEOUT: Final = 28800
MAX_WAIT_SECONDS: Final = 3600

InstanceType = Annotated[
    str, Field(pattern=_INSTANCE.pattern, description="a SageMaker instance type, e.g. ml.c5.large")
]


def instance_family(instance_type: str) -> str:
    """``ml.g5.xlarge`` -> ``g5``."""
    return instance_type.split(".")[1]


def has_instance_storage(instance_type: str) -> bool:
    return instance_family(instance_type) in INSTANCE_STORAGE_FAMILIES


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeploymentPolicy(_Model):
    """How a new model version replaces the live one: SageMaker blue/green with auto-rollback.

    ``traffic`` is the routing of the new (green) fleet: ``canary`` turns on ``canary_instances``
    first and bakes for ``wait_seconds`` while the rollback alarms watch; ``linear`` turns on
    ``linear_step_instances`` at a time, baking ``wait_seconds`` after each step; ``all_at_once``
    shifts everything, then bakes. Sizes are whole instances (SageMaker's ``INSTANCE_COUNT``), so
    the canary is the same share of capacity whatever autoscaling has done.
    """

    traffic: Literal["canary", "linear", "all_at_once"] = "canary"
    canary_instances: int = Field(default=1, ge=1)
    linear_step_instances: int = Field(default=1, ge=1)
    wait_seconds: int = Field(default=300, ge=0, le=MAX_WAIT_SECONDS)
    termination_wait_seconds: int = Field(default=120, ge=0, le=3600)
    maximum_execution_timeout_seconds: int = Field(
        default=2400, ge=MIN_EXECUTION_TIMEOUT, le=MAX_EXECUTION_TIMEOUT
    )

    def steps(self, instances: int) -> int:
        """How many traffic steps a deployment to ``instances`` instances takes (each followed by a bake)."""
        if self.traffic == "linear":
            return -(-instances // self.linear_step_instances)
        return 2 if self.traffic == "canary" else 1

    def waiting_seconds(self, instances: int) -> int:
        """Every wait configured for ``instances``: a bake after each step, then the termination wait."""
        return self.wait_seconds * self.steps(instances) + self.termination_wait_seconds

    def update_seconds(self) -> int:
        """The longest a stack update of the endpoint may run: SageMaker abandons (and rolls back) a
        blue/green deployment at ``maximum_execution_timeout_seconds``, and the first deployment also
        provisions a fleet before it."""
        return self.maximum_execution_timeout_seconds + PROVISIONING_ALLOWANCE_SECONDS

    def first_share(self, instances: int) -> float:
        """The share of traffic the new fleet takes in its first step."""
        if self.traffic == "canary":
            return self.canary_instances / instances
        if self.traffic == "linear":
            return min(1.0, self.linear_step_instances / instances)
        return 1.0


class RollbackAlarms(_Model):
    """The alarms that stop a deployment (and page someone afterwards), in the units people think in.

    CloudWatch's own units differ: ``Invocation5XXErrors`` averaged over a period is already a rate
    (1 means every request failed), and ``ModelLatency``/``OverheadLatency`` are in microseconds.
    The Serving stack and the local endpoint both convert from these values.
    """

    error_rate: float = Field(default=0.01, gt=0, lt=1, description="5XX share of invocations")
    model_latency_p99_ms: float = Field(default=500, gt=0, le=60_000)
    overhead_latency_p99_ms: float = Field(default=100, gt=0, le=60_000)
    period_seconds: Literal[10, 30, 60, 300] = 60
    evaluation_periods: int = Field(default=3, ge=1, le=10)
    datapoints_to_alarm: int = Field(default=2, ge=1, le=10)

    @model_validator(mode="after")
    def _datapoints(self) -> RollbackAlarms:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm ({self.datapoints_to_alarm}) exceeds evaluation_periods "
                f"({self.evaluation_periods}); an alarm needs M of N datapoints with M <= N"
            )
        return self


class ApiSettings(_Model):
    """The private REST API in front of the endpoint (IAM authorization, VPC endpoint only)."""

    throttle_rate_per_second: float = Field(default=50, gt=0, le=10_000)
    throttle_burst: int = Field(default=100, ge=1, le=5_000)
    quota_per_day: int = Field(default=100_000, ge=1)


class ServingSettings(_Model):
    """The stage's endpoint: instances, autoscaling, data capture, deployment policy, alarms, API."""

    enabled: bool = True
    instance_type: InstanceType = "ml.c5.large"
    initial_instance_count: int = Field(default=2, ge=1, le=100)
    min_instances: int = Field(default=2, ge=1, le=100)
    max_instances: int = Field(default=4, ge=1, le=100)
    # Target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute).
    invocations_per_instance: int = Field(default=600, ge=1, le=100_000)
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)
    capture_sampling_percent: int = Field(default=100, ge=0, le=100)
    # "kms": the endpoint's storage volume is encrypted with the artifacts key (the default, control
    # H1). "instance-storage": only for instance types with local NVMe storage, which SageMaker
    # encrypts in hardware and where it rejects a KMS key.
    volume_encryption: Literal["kms", "instance-storage"] = "kms"
    deployment: DeploymentPolicy = DeploymentPolicy()
    alarms: RollbackAlarms = RollbackAlarms()
    api: ApiSettings = ApiSettings()

    @model_validator(mode="after")
    def _consistent(self) -> ServingSettings:
        if not self.min_instances <= self.initial_instance_count <= self.max_instances:
            raise ValueError(
                f"initial_instance_count ({self.initial_instance_count}) must lie within min_instances "
                f"({self.min_instances}) and max_instances ({self.max_instances}); adjust one of them"
            )
        policy = self.deployment
        if policy.traffic == "canary" and 2 * policy.canary_instances > self.min_instances:
            raise ValueError(
                f"deployment.canary_instances = {policy.canary_instances} is more than half of "
                f"min_instances ({self.min_instances}): SageMaker allows a canary of at most 50% of the "
                f"fleet; raise min_instances to {2 * policy.canary_instances} or lower the canary "
                '(or use traffic = "all_at_once" outside production)'
            )
        if policy.traffic == "linear":
            step = policy.linear_step_instances
            if not 0.1 * self.max_instances <= step <= 0.5 * self.min_instances:
                raise ValueError(
                    f"deployment.linear_step_instances = {step} must be 10-50% of the fleet "
                    f"({self.min_instances}-{self.max_instances} instances), as SageMaker requires; "
                    f"raise min_instances to at least {2 * step} or change the step"
                )
        needed = PROVISIONING_ALLOWANCE_SECONDS + policy.waiting_seconds(self.max_instances)
        if policy.maximum_execution_timeout_seconds <= needed:
            raise ValueError(
                f"deployment.maximum_execution_timeout_seconds = {policy.maximum_execution_timeout_seconds} "
                f"does not exceed provisioning ({PROVISIONING_ALLOWANCE_SECONDS} s) plus the bake and "
                f"termination waits ({policy.waiting_seconds(self.max_instances)} s at "
                f"{self.max_instances} instances); raise it above {needed} (at most "
                f"{MAX_EXECUTION_TIMEOUT}) or shorten wait_seconds"
            )
        storage = has_instance_storage(self.instance_type)
        if storage and self.volume_encryption == "kms":
            raise ValueError(
                f"instance_type {self.instance_type!r} has local NVMe instance storage, where SageMaker "
                "rejects a volume KMS key (CreateEndpointConfig fails; the storage is encrypted by the "
                'instance\'s hardware): set volume_encryption = "instance-storage" to accept that, or '
                'choose a type without instance storage such as "ml.c5.large"'
            )
        if not storage and self.volume_encryption == "instance-storage":
            raise ValueError(
                f'volume_encryption = "instance-storage" but {self.instance_type!r} has no instance '
                'storage: its EBS volume needs the KMS key; set volume_encryption = "kms"'
            )
        return self
