"""Control M1 on the synthesized ``Rookery-<stage>-Serving``: the monitoring schedules, the model-quality
job definition, their perimeter, the baseline they read, their role, alarms and topic; and the props
that would break the perimeter refused before synthesis.

Expectations come from the stage config and the construct objects, never from hard-coded logical ids.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from infra_testing import Synth, arn_of, resources

from infra.constructs.monitoring import MonitoringProps
from infra.constructs.props import PropsError
from infra.stacks.serving import ServingStack
from infra.stacks.stage_props import monitoring_props
from rookery_contracts import monitoring as mon
from stage.names import (
    APPROVED_MODEL_PARAMETER,
    MONITORING_BASELINE_PARAMETER,
    endpoint_name,
    monitoring_alarm_names,
    monitoring_role_path,
    monitoring_schedule_names,
    pipeline_name,
)

pytestmark = pytest.mark.xdist_group("infra-synth")

CONDITION = "HasMonitoringBaseline"


def _serving(synth: Synth) -> ServingStack:
    assert synth.stacks.serving is not None
    return synth.stacks.serving


def _schedules(synth: Synth) -> dict[str, dict[str, Any]]:
    """The schedules by kind (their names end with the kind)."""
    found = resources(synth.serving, "AWS::SageMaker::MonitoringSchedule").values()
    names = {v: k for k, v in monitoring_schedule_names(synth.stage).items()}
    return {names[r["Properties"]["MonitoringScheduleName"]]: r for r in found}


def _quality_definition(synth: Synth) -> dict[str, Any]:
    (definition,) = resources(synth.serving, "AWS::SageMaker::ModelQualityJobDefinition").values()
    return dict(definition)


def _perimeter(
    network: dict[str, Any], cluster: dict[str, Any], output: dict[str, Any], synth: Synth
) -> None:
    serving = _serving(synth)
    assert network["EnableNetworkIsolation"] is True
    assert network["EnableInterContainerTrafficEncryption"] is True
    vpc = network["VpcConfig"]
    assert vpc["SecurityGroupIds"] == [
        {"Fn::GetAtt": [synth.logical_id(serving.model_network.security_group), "GroupId"]}
    ]
    assert len(vpc["Subnets"]) == synth.stage.max_azs
    key = json.dumps(cluster["VolumeKmsKeyId"])
    assert "Artifacts" in key and json.dumps(output["KmsKeyId"]) == key
    assert cluster["InstanceCount"] == 1 and cluster["InstanceType"] == synth.stage.monitoring.instance_type


def test_data_quality_runs_the_project_image_on_an_hourly_schedule_inside_the_perimeter(synth: Synth) -> None:
    schedule = _schedules(synth)[mon.DATA_QUALITY]
    assert schedule["Condition"] == CONDITION
    config = schedule["Properties"]["MonitoringScheduleConfig"]
    assert config["ScheduleConfig"]["ScheduleExpression"] == synth.stage.monitoring.schedule_expression
    job = config["MonitoringJobDefinition"]
    app = job["MonitoringAppSpecification"]
    assert app["ContainerEntrypoint"] == list(mon.MONITOR_ENTRYPOINT)
    assert app["ContainerArguments"] == [mon.DATA_QUALITY]
    assert "ProjectImage" in json.dumps(app["ImageUri"]) or "cdk-" in json.dumps(app["ImageUri"])
    (source,) = job["MonitoringInputs"]
    assert source["EndpointInput"]["EndpointName"] == endpoint_name(synth.stage)
    assert source["EndpointInput"]["LocalPath"] == mon.ENDPOINT_INPUT_PATH
    (output,) = job["MonitoringOutputConfig"]["MonitoringOutputs"]
    assert output["S3Output"]["LocalPath"] == mon.RESULT_PATH
    _perimeter(
        job["NetworkConfig"],
        job["MonitoringResources"]["ClusterConfig"],
        job["MonitoringOutputConfig"],
        synth,
    )
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == synth.stage.monitoring.max_runtime_seconds
    assert json.loads(job["Environment"]["ROOKERY_DATASET_SCHEMA"]) == synth.stage.dataset.to_dict()
    assert job["Environment"][mon.PUBLISH_METRICS_ENV] == mon.METRICS_ENABLED
    # The baseline: the deployed version's Baseline step output, by the files' fixed names.
    baseline = json.dumps(job["BaselineConfig"])
    assert MONITORING_BASELINE_PARAMETER in baseline
    assert "data-quality/constraints.json" in baseline and "data-quality/statistics.json" in baseline


def test_model_quality_is_a_job_definition_with_ground_truth_inside_the_perimeter(synth: Synth) -> None:
    definition = _quality_definition(synth)
    assert definition["Condition"] == CONDITION
    p = definition["Properties"]
    assert p["ModelQualityAppSpecification"]["ContainerArguments"] == [mon.MODEL_QUALITY]
    assert p["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    truth = json.dumps(p["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"])
    assert "ground-truth" in truth and "raw" in truth
    assert "model-quality/constraints.json" in json.dumps(p["ModelQualityBaselineConfig"])
    _perimeter(
        p["NetworkConfig"], p["JobResources"]["ClusterConfig"], p["ModelQualityJobOutputConfig"], synth
    )
    schedule = _schedules(synth)[mon.MODEL_QUALITY]
    config = schedule["Properties"]["MonitoringScheduleConfig"]
    assert config["MonitoringType"] == "ModelQuality"
    # A new baseline replaces the definition (its properties are immutable): CloudFormation names it,
    # since it cannot replace a resource with a fixed name, and the schedule follows it by its ARN.
    assert "JobDefinitionName" not in p
    arn = {
        "Fn::GetAtt": [
            synth.logical_id(_serving(synth).monitoring.quality_job_definition),
            "JobDefinitionArn",
        ]
    }
    assert config["MonitoringJobDefinitionName"] == {"Fn::Select": [1, {"Fn::Split": ["/", arn]}]}


def test_monitoring_exists_only_with_an_approved_model_and_its_baseline(synth: Synth) -> None:
    parameter = synth.serving["Parameters"][MONITORING_BASELINE_PARAMETER]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    condition = json.dumps(synth.serving["Conditions"][CONDITION])
    assert APPROVED_MODEL_PARAMETER in condition and MONITORING_BASELINE_PARAMETER in condition
    serving = _serving(synth)
    endpoint = synth.logical_id(serving.endpoint.endpoint)
    for schedule in _schedules(synth).values():
        assert endpoint in schedule["DependsOn"]


def test_an_alarm_per_schedule_notifies_the_encrypted_topic(synth: Synth) -> None:
    monitoring = _serving(synth).monitoring
    alarms = {
        a["Properties"]["AlarmName"]: a
        for a in resources(synth.serving, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == mon.VIOLATIONS_METRIC
    }
    names = monitoring_alarm_names(synth.stage)
    assert set(alarms) == set(names.values())
    topic = {"Ref": synth.logical_id(monitoring.topic)}
    for kind, name in names.items():
        p = alarms[name]["Properties"]
        assert alarms[name]["Condition"] == CONDITION
        assert p["Namespace"] == mon.kind_namespace(kind)
        assert {d["Name"]: d["Value"] for d in p["Dimensions"]} == {
            mon.ENDPOINT_DIMENSION: endpoint_name(synth.stage),
            mon.SCHEDULE_DIMENSION: monitoring_schedule_names(synth.stage)[kind],
        }
        assert (p["Statistic"], p["Threshold"], p["ComparisonOperator"]) == (
            "Maximum",
            0,
            "GreaterThanThreshold",
        )
        assert p["Period"] == synth.stage.monitoring.every_hours * 3600
        assert p["TreatMissingData"] == "notBreaching"
        assert p["AlarmActions"] == [topic]
    (sns_topic,) = resources(synth.serving, "AWS::SNS::Topic").values()
    assert sns_topic["Properties"]["KmsMasterKeyId"] == arn_of(synth.logical_id(monitoring.topic_key))


def test_the_monitoring_role_is_bounded_and_scoped(synth: Synth) -> None:
    serving = _serving(synth)
    role = resources(synth.serving, "AWS::IAM::Role")[synth.logical_id(serving.monitoring.role)]
    assert role["Properties"]["Path"] == monitoring_role_path(synth.stage)
    assert role["Properties"]["PermissionsBoundary"] == {"Ref": synth.logical_id(serving.guardrails.policy)}
    statements = {
        s["Sid"]: s
        for p in resources(synth.serving, "AWS::IAM::Policy").values()
        if {"Ref": synth.logical_id(serving.monitoring.role)} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    }
    assert set(statements) == {g.sid for g in serving.monitoring.grants}
    reads = json.dumps(statements["ReadCaptureAndGroundTruth"]["Resource"])
    assert "capture/*" in reads and "ground-truth/*" in reads
    assert f"{pipeline_name(synth.stage)}/*" in json.dumps(statements["ReadBaseline"]["Resource"])
    assert "monitoring/*" in json.dumps(statements["WriteReports"]["Resource"])
    assert statements["ReadCaptureAndGroundTruth"]["Action"] == "s3:GetObject"


def test_the_boundary_denies_monitoring_outside_the_perimeter(synth: Synth) -> None:
    serving = _serving(synth)
    (boundary,) = [
        p
        for k, p in resources(synth.serving, "AWS::IAM::ManagedPolicy").items()
        if k == synth.logical_id(serving.guardrails.policy)
    ]
    denied = {
        sid["Sid"]: sid["Action"]
        for sid in boundary["Properties"]["PolicyDocument"]["Statement"]
        if sid["Effect"] == "Deny"
    }
    for rule in ("NetworkIsolation", "InterContainerTrafficEncryption", "VolumeKey", "OutputKey", "Subnets"):
        actions = [a for sid, a in denied.items() if sid.startswith(f"Deny{rule}")]
        assert actions, rule
        assert all("sagemaker:CreateMonitoringSchedule" in a for a in actions), rule


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"network_isolation": False}, "network_isolation"),
        ({"inter_container_encryption": False}, "inter_container_encryption"),
        ({"max_runtime_seconds": 7200}, "max_runtime_seconds"),
        ({"schedule_names": {mon.DATA_QUALITY: "x"}}, "schedule_names"),
    ],
)
def test_props_that_would_break_the_perimeter_are_refused(
    dev: Synth, change: dict[str, Any], field: str
) -> None:
    props = monitoring_props(dev.stage, pipeline_name=pipeline_name(dev.stage))
    assert isinstance(props, MonitoringProps)
    with pytest.raises(PropsError, match=rf"MonitoringProps\.{field} = "):
        dataclasses.replace(props, **change)
