"""What the SageMaker emulator answers with: ARNs, the names pipeline steps give their jobs, model
package references (``emulators/sagemaker/responses.py``)."""

from __future__ import annotations

import re

import pytest

from emulators.sagemaker import RegistryError
from emulators.sagemaker.responses import arn, job_name, model_package_arn, package_reference


def test_arns_carry_names_in_lower_case() -> None:
    assert arn("eu-west-1", "123456789012", "training-job", "Train-X") == (
        "arn:aws:sagemaker:eu-west-1:123456789012:training-job/train-x"
    )
    assert model_package_arn("eu-west-1", "123456789012", "Models", 3) == (
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/models/3"
    )


def test_a_job_name_is_a_pipelines_and_fits_sagemakers_limit() -> None:
    name = job_name("abc123def456", "Train Step/With_Odd chars" * 3)

    assert re.fullmatch(r"pipelines-abc123def456-[A-Za-z0-9-]+-[a-z0-9]{10}", name)
    assert len(name) <= 63


def test_a_package_is_referenced_by_group_and_version_or_by_its_arn() -> None:
    assert package_reference(" Models/2 ") == ("Models", 2, False)
    assert package_reference("arn:aws:sagemaker:eu-west-1:123456789012:model-package/models/7") == (
        "models",
        7,
        True,
    )
    with pytest.raises(
        RegistryError, match=r"'models' is not a model package reference; write <group>/<version>"
    ):
        package_reference("models")
