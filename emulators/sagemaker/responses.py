"""What the SageMaker emulator answers with, in the service's own shapes: ARNs, the names pipeline
steps give their jobs, model package references and status words, and ``DescribeModelPackage``.

Each step module builds its job's ``Describe*`` response as the job runs (the properties later
steps ``Get``); what more than one module reads or writes is here.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from emulators.sagemaker.exceptions import RegistryError

if TYPE_CHECKING:
    from emulators.sagemaker.models import ModelPackage

APPROVAL_STATUSES: Final = ("PendingManualApproval", "Approved", "Rejected")
_ALPHABET: Final = string.ascii_lowercase + string.digits
_PACKAGE_ARN: Final = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]+):(\d{12}):model-package/([^/]+)/(\d+)$"
)
_PACKAGE_REF: Final = re.compile(r"^([A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/(\d+)$")


def arn(region: str, account: str, kind: str, name: str) -> str:
    """``arn:aws:sagemaker:<region>:<account>:<kind>/<name>`` (SageMaker writes the name in lower case)."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def model_package_arn(region: str, account: str, group: str, version: int) -> str:
    return f"{arn(region, account, 'model-package', group)}/{version}"


def random_id(length: int) -> str:
    """Lower-case letters and digits, as SageMaker's generated ids are."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def job_name(execution_id: str, step_name: str, limit: int = 63) -> str:
    """``pipelines-<execution id>-<step>-<random>``, the way pipeline steps name their jobs."""
    suffix = random_id(10)
    room = limit - len("pipelines-") - len(execution_id) - len(suffix) - 2
    stem = re.sub(r"[^A-Za-z0-9-]", "-", step_name)[: max(room, 1)]
    return f"pipelines-{execution_id}-{stem}-{suffix}"


class PackageReference(NamedTuple):
    """A model package named by ``<group>/<version>`` or by its ARN (which holds the group in lower case)."""

    group: str
    version: int
    from_arn: bool


def package_reference(ref: str) -> PackageReference:
    """Read ``<group>/<version>`` or the ARN ``arn:aws:sagemaker:...:model-package/<group>/<version>``."""
    text = ref.strip()
    match = _PACKAGE_ARN.match(text)
    if match:
        return PackageReference(match.group(3), int(match.group(4)), from_arn=True)
    match = _PACKAGE_REF.match(text)
    if match:
        return PackageReference(match.group(1), int(match.group(2)), from_arn=False)
    raise RegistryError(
        f"{ref!r} is not a model package reference; write <group>/<version> (e.g. rookery-dev-models/1) "
        "or the ARN arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
    )


def describe_model_package(package: ModelPackage) -> dict[str, Any]:
    """``DescribeModelPackage``'s members for a version, plus the metrics loaded from its ModelMetrics."""
    return {
        "ModelPackageGroupName": package.group,
        "ModelPackageVersion": package.version,
        "ModelPackageArn": package.arn,
        "ModelApprovalStatus": package.approval_status,
        "ApprovalDescription": package.approval_description,
        "CreationTime": package.created_at.isoformat(),
        "ModelPackageStatus": "Completed",
        "ExecutionId": package.execution_id,
        "InferenceSpec": package.inference_spec,
        "ModelMetrics": package.model_metrics,
        "DriftCheckBaselines": package.drift_check_baselines,
        "Metrics": package.metrics,
    }
