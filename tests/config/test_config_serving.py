"""The serving settings of a stage: what SageMaker would refuse at deploy time is refused at load time,
with the field, the value and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stage import DEFAULT_ENDPOINTS, INTERFACE_ENDPOINTS, ConfigError, load_stage, parse_stage
from stage.names import (
    APPROVED_MODEL_PARAMETER,
    CAPTURE_PREFIX,
    alarm_names,
    api_name,
    endpoint_name,
    serving_role_path,
)
from stage.serving import (
    INSTANCE_STORAGE_FAMILIES,
    PROVISIONING_ALLOWANCE_SECONDS,
    DeploymentPolicy,
    ServingSettings,
    has_instance_storage,
)

DATASET: dict[str, Any] = {
    "name": "penguins",
    "target": "sex",
    "positive_class": "female",
    "numeric": ["bill_length_mm"],
    "categorical": ["island"],
}
PROD_BASE: dict[str, Any] = {
    "production": True,
    "account": "123456789012",
    "termination_protection": True,
}


def _error(serving: dict[str, Any], **stage: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_stage("dev", {"dataset": DATASET, "serving": serving, **stage}, source="test.toml")
    return str(raised.value)


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_shipped_stages_deploy_with_a_canary_in_whole_instances(name: str) -> None:
    serving = load_stage(name).serving
    assert serving.deployment.traffic == "canary"
    assert 2 * serving.deployment.canary_instances <= serving.min_instances
    assert serving.volume_encryption == "kms"


def test_prod_captures_a_sample_and_runs_at_least_two_instances() -> None:
    serving = load_stage("prod").serving
    assert serving.min_instances >= 2
    assert 0 < serving.capture_sampling_percent < 100


def test_a_canary_larger_than_half_the_fleet_is_refused_naming_field_value_and_fix() -> None:
    message = _error({"min_instances": 2, "deployment": {"canary_instances": 2}})
    assert "deployment.canary_instances = 2" in message
    assert "at most 50%" in message
    assert "raise min_instances to 4" in message


def test_a_bake_that_leaves_no_room_in_the_timeout_is_refused() -> None:
    message = _error({"deployment": {"wait_seconds": 3600, "maximum_execution_timeout_seconds": 3600}})
    assert "maximum_execution_timeout_seconds = 3600" in message
    assert f"provisioning ({PROVISIONING_ALLOWANCE_SECONDS} s)" in message
    assert "raise it above" in message


def test_a_kms_key_on_an_instance_type_with_nvme_storage_is_refused() -> None:
    message = _error({"instance_type": "ml.g5.xlarge"}, ml={"inference_instance_types": ["ml.g5.xlarge"]})
    assert "'ml.g5.xlarge' has local NVMe instance storage" in message
    assert 'volume_encryption = "instance-storage"' in message


def test_instance_storage_on_a_type_without_it_is_refused() -> None:
    message = _error({"volume_encryption": "instance-storage"})
    assert "has no instance storage" in message


def test_instance_storage_is_accepted_only_where_the_type_has_it() -> None:
    stage = parse_stage(
        "dev",
        {
            "dataset": DATASET,
            "ml": {"inference_instance_types": ["ml.g5.xlarge"]},
            "serving": {"instance_type": "ml.g5.xlarge", "volume_encryption": "instance-storage"},
        },
        source="test.toml",
    )
    assert stage.serving.volume_encryption == "instance-storage"


def test_the_storage_table_is_explicit_not_a_name_heuristic() -> None:
    # Families that end in "d" without local NVMe storage, and ones with it that do not end in "d".
    assert not has_instance_storage("ml.m5.large")
    assert has_instance_storage("ml.g5.xlarge") and has_instance_storage("ml.p4de.24xlarge")
    assert not any(has_instance_storage(f"ml.{f}.large") for f in ("t2", "c5", "m5", "r5", "g4ad"))
    assert "g4ad" not in INSTANCE_STORAGE_FAMILIES


def test_production_with_one_instance_is_refused() -> None:
    message = _error(
        {"initial_instance_count": 1, "min_instances": 1, "deployment": {"traffic": "all_at_once"}},
        **PROD_BASE,
    )
    assert "serving.min_instances >= 2 (it is 1)" in message


def test_production_without_a_canary_or_linear_policy_is_refused() -> None:
    message = _error({"deployment": {"traffic": "all_at_once"}}, **PROD_BASE)
    assert 'traffic = "canary" or "linear"' in message


def test_a_serving_type_the_model_package_does_not_support_is_refused() -> None:
    message = _error({"instance_type": "ml.m5.xlarge"})
    assert "serving.instance_type 'ml.m5.xlarge' is not among the instance types" in message


def test_initial_count_outside_the_autoscaling_bounds_is_refused() -> None:
    message = _error({"initial_instance_count": 5, "max_instances": 4})
    assert "initial_instance_count (5) must lie within" in message


def test_linear_steps_outside_ten_to_fifty_percent_are_refused() -> None:
    message = _error(
        {
            "min_instances": 2,
            "initial_instance_count": 2,
            "max_instances": 20,
            "deployment": {"traffic": "linear", "linear_step_instances": 1},
        }
    )
    assert "must be 10-50% of the fleet" in message


def test_alarm_datapoints_cannot_exceed_the_periods() -> None:
    message = _error({"alarms": {"evaluation_periods": 2, "datapoints_to_alarm": 3}})
    assert "datapoints_to_alarm (3) exceeds evaluation_periods (2)" in message


@given(
    instances=st.integers(min_value=2, max_value=40),
    canary=st.integers(min_value=1, max_value=20),
    wait=st.integers(min_value=0, max_value=3600),
    timeout=st.integers(min_value=600, max_value=28800),
)
def test_every_accepted_policy_is_one_sagemaker_accepts(
    instances: int, canary: int, wait: int, timeout: int
) -> None:
    """Whatever is accepted keeps SageMaker's rules for any fleet size autoscaling can reach."""
    raw = {
        "initial_instance_count": instances,
        "min_instances": instances,
        "max_instances": instances,
        "deployment": {
            "canary_instances": canary,
            "wait_seconds": wait,
            "maximum_execution_timeout_seconds": timeout,
        },
    }
    try:
        serving = ServingSettings.model_validate(raw)
    except ValueError:
        accepted = False
    else:
        accepted = True
        policy = serving.deployment
        assert 2 * policy.canary_instances <= serving.min_instances
        assert policy.maximum_execution_timeout_seconds > PROVISIONING_ALLOWANCE_SECONDS + 2 * wait
        assert 0 < policy.first_share(serving.min_instances) <= 0.5
    fits = 2 * canary <= instances and timeout > PROVISIONING_ALLOWANCE_SECONDS + 2 * wait + 120
    assert accepted == fits


def test_policy_steps_and_first_share() -> None:
    assert DeploymentPolicy(traffic="canary", canary_instances=1).first_share(4) == 0.25
    assert DeploymentPolicy(traffic="linear", linear_step_instances=2).steps(5) == 3
    assert DeploymentPolicy(traffic="all_at_once").first_share(3) == 1.0


def test_serving_needs_the_execute_api_endpoint_its_private_api_answers_through() -> None:
    without = [e for e in DEFAULT_ENDPOINTS if e != "execute-api"]
    message = _error({}, interface_endpoints=without)
    assert "serving is enabled but interface_endpoints lacks 'execute-api'" in message
    assert "add 'execute-api' or set serving.enabled = false" in message
    stage = parse_stage(
        "dev",
        {"dataset": DATASET, "interface_endpoints": without, "serving": {"enabled": False}},
        source="test.toml",
    )
    assert "execute-api" not in stage.interface_endpoints


def test_execute_api_is_a_default_endpoint_with_its_reason() -> None:
    assert "execute-api" in DEFAULT_ENDPOINTS
    assert "private inference API" in INTERFACE_ENDPOINTS["execute-api"]
    for name in ("dev", "prod"):
        assert "execute-api" in load_stage(name).interface_endpoints


def test_capture_lands_under_a_top_level_prefix_beside_the_datasets() -> None:
    assert CAPTURE_PREFIX == "capture/"
    for name in ("dev", "prod"):
        stage = load_stage(name)
        assert not stage.data.layout.data_prefix(stage.dataset).startswith(CAPTURE_PREFIX)
        assert not CAPTURE_PREFIX.startswith(stage.data.layout.data_prefix(stage.dataset))


def test_serving_names_are_stable_and_derived_from_the_stage() -> None:
    stage = load_stage("dev")
    assert APPROVED_MODEL_PARAMETER == "ApprovedModelPackageArn"
    assert endpoint_name(stage) == "rookery-dev-endpoint"
    assert alarm_names(stage) == {
        "errors": "rookery-dev-endpoint-5xx-rate",
        "model_latency": "rookery-dev-endpoint-model-latency-p99",
        "overhead_latency": "rookery-dev-endpoint-overhead-latency-p99",
    }
    assert serving_role_path(stage) == "/rookery-dev/serving-model/"
    assert api_name(stage) == "rookery-dev-inference"
