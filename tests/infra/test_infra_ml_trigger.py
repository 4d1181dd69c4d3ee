"""The pipeline trigger on ``Rookery-<stage>-ML``: rule patterns, target retries and DLQs, async config, L1,
and the retrain rule on the monitoring alarms only where the stage's reaction is ``retrain``.

The handler's behaviour under moto (duplicate event, error prefix, malformed event) is proven in
``tests/lambdas/test_trigger_moto.py``; these tests prove the wiring that feeds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from infra_testing import Markers, Synth, arn_of, ref, resources
from moto.events.models import EventPattern

from infra.audit.rules import ROOKERY_RULES
from infra.audit.template import flatten
from infra.constructs.function import RUNTIME
from infra.constructs.props import PropsError
from infra.constructs.rule_dead_letters import RULE_RETRIES
from infra.constructs.trigger import ASYNC_RETRIES, PipelineTrigger, RetrainProps, TriggerProps
from pipeline_trigger import settings as trigger_settings
from pipeline_trigger.plan import Start, parse_event, plan
from pipelines.parameters import INPUT_DATA_URI, MODEL_APPROVAL_STATUS
from rookery_contracts.env import RAW_BUCKET_ENV, RETRAIN_ALARMS_ENV, RETRAIN_INTERVAL_ENV
from rookery_contracts.pipeline import ALARM_EVENT_SOURCE
from stage.names import (
    bucket_name,
    monitoring_alarm_names,
    pipeline_name,
    retrain_rule_name,
    trigger_rule_name,
)

pytestmark = pytest.mark.xdist_group("infra-synth")


def _rule(synth: Synth) -> dict[str, Any]:
    return dict(synth.props(synth.stacks.ml.trigger.rule))


def test_the_rule_matches_new_objects_under_the_dataset_prefix_of_the_raw_bucket(synth: Synth) -> None:
    stage = synth.stage
    rule = _rule(synth)
    assert rule["Name"] == trigger_rule_name(stage)
    assert rule["State"] == "ENABLED"
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    [name] = pattern["detail"]["bucket"]["name"]
    account = stage.account or "<AWS::AccountId>"
    region = stage.region if stage.account else "<AWS::Region>"
    assert flatten(name) == bucket_name(stage, "raw", account=account, region=region)
    assert pattern["detail"]["object"]["key"] == [{"prefix": stage.data.layout.data_prefix(stage.dataset)}]


def test_the_raw_bucket_sends_the_events_the_rule_matches(synth: Synth) -> None:
    raw = synth.props(synth.stacks.data.lake.buckets["raw"])
    assert raw["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    # The same config-derived name on both sides (the ML stack does not reference the Data stack's bucket).
    assert flatten(raw["BucketName"]) == flatten(_rule(synth)["EventPattern"]["detail"]["bucket"]["name"][0])


def test_the_rule_target_retries_a_bounded_number_of_times_then_dead_letters(synth: Synth) -> None:
    trigger = synth.stacks.ml.trigger
    [target] = _rule(synth)["Targets"]
    assert target["Arn"] == arn_of(synth.logical_id(trigger.function.function))
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": RULE_RETRIES, "MaximumEventAgeInSeconds": 7200}
    assert target["DeadLetterConfig"] == {"Arn": arn_of(synth.logical_id(trigger.rule_dead_letter_queue))}
    queue = synth.props(trigger.rule_dead_letter_queue)
    assert queue["KmsMasterKeyId"] == arn_of(synth.logical_id(synth.stacks.ml.queue_key))
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    [rule] = [r for r in ROOKERY_RULES.rules if r.id == "Rookery-L2"]
    assert list(rule.check(synth.ml)) == []


def test_only_this_rule_may_encrypt_into_the_queue_key(synth: Synth) -> None:
    ml = synth.stacks.ml
    statements = synth.props(ml.queue_key)["KeyPolicy"]["Statement"]
    # One statement per rule, each naming its own rule (the retrain rule's: below).
    [events] = [s for s in statements if s.get("Sid") == "EventBridgeRuleDeadLetters"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    expected = 2 if synth.stage.monitoring.retrains else 1
    assert (
        len([s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}]) == expected
    )
    assert sorted(events["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    source = flatten(events["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert source.endswith(f":rule/{trigger_rule_name(synth.stage)}")
    queue_policies = [
        s
        for p in resources(synth.ml, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [ref(synth.logical_id(ml.trigger.rule_dead_letter_queue))]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    [send] = queue_policies
    assert send["Principal"] == {"Service": "events.amazonaws.com"} and send["Action"] == "sqs:SendMessage"
    assert send["Condition"]["ArnEquals"]["aws:SourceArn"] == arn_of(synth.logical_id(ml.trigger.rule))


def test_asynchronous_invocations_retry_twice_within_an_hour(synth: Synth) -> None:
    function = synth.stacks.ml.trigger.function.function
    [config] = resources(synth.ml, "AWS::Lambda::EventInvokeConfig").values()
    props = config["Properties"]
    assert props["FunctionName"] == ref(synth.logical_id(function))
    assert (props["MaximumRetryAttempts"], props["MaximumEventAgeInSeconds"]) == (ASYNC_RETRIES, 3600)
    assert ASYNC_RETRIES == 2


def test_the_function_is_an_l1_lambda_with_a_small_reserved_concurrency_and_its_dlq(synth: Synth) -> None:
    trigger, network = synth.stacks.ml.trigger, synth.stacks.network.network
    props = synth.props(trigger.function.function)
    assert props["Runtime"] == RUNTIME.name
    assert props["Handler"] == "pipeline_trigger.handler.lambda_handler"
    assert 2 <= props["ReservedConcurrentExecutions"] <= 5
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["DeadLetterConfig"] == {
        "TargetArn": arn_of(synth.logical_id(trigger.function.dead_letter_queue))
    }
    assert props["VpcConfig"]["SecurityGroupIds"] == [
        synth.stacks.ml.resolve(network.workload_security_groups["lambda"].security_group_id)
    ]
    queue = synth.props(trigger.function.dead_letter_queue)
    assert queue["KmsMasterKeyId"] == arn_of(synth.logical_id(synth.stacks.ml.queue_key))


def test_the_environment_is_what_the_handler_reads_and_it_loads(synth: Synth) -> None:
    stage = synth.stage
    env = synth.props(synth.stacks.ml.trigger.function.function)["Environment"]["Variables"]
    assert env[trigger_settings.PIPELINE_NAME_ENV] == pipeline_name(stage)
    assert env[trigger_settings.DATA_PREFIX_ENV] == stage.data.layout.data_prefix(stage.dataset)
    assert env[trigger_settings.ERROR_PREFIX_ENV] == stage.data.layout.error_prefix
    assert env[trigger_settings.INPUT_PARAMETER_ENV] == INPUT_DATA_URI
    loaded = trigger_settings.load_settings(env)  # the function's own cold-start validation
    assert (loaded.pipeline_name, loaded.input_parameter) == (pipeline_name(stage), INPUT_DATA_URI)


def test_the_function_may_start_and_list_executions_of_the_stage_pipeline_only(synth: Synth) -> None:
    trigger = synth.stacks.ml.trigger
    statements = [
        s
        for p in resources(synth.ml, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(trigger.function.role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "sagemaker" in str(s["Action"])
    ]
    [statement] = statements
    assert sorted(statement["Action"]) == [
        "sagemaker:ListPipelineExecutions",
        "sagemaker:StartPipelineExecution",
    ]
    assert flatten(statement["Resource"]).endswith(f":pipeline/{pipeline_name(synth.stage)}")


# --- the retrain rule: the monitoring alarms' changes into ALARM, where the stage retrains ------------


def _retraining(synth: Synth) -> PipelineTrigger:
    trigger = synth.stacks.ml.trigger
    assert trigger.retrain_rule is not None and trigger.retrain_dead_letter_queue is not None
    return trigger


def _alarm_event(name: str, *, state: str = "ALARM", previous: str = "OK") -> dict[str, Any]:
    """A "CloudWatch Alarm State Change" event as CloudWatch sends it to the default bus."""
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "account": "123456789012",
        "time": "2024-05-01T13:05:12Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": "Threshold Crossed",
                "timestamp": "2024-05-01T13:05:12.345+0000",
            },
            "previousState": {"value": previous, "reason": "", "timestamp": "2024-05-01T12:05:12.345+0000"},
        },
    }


def _rules_on_alarms(synth: Synth) -> list[Mapping[str, Any]]:
    templates = [synth.network, synth.data, synth.ml] + ([synth.serving] if synth.stacks.serving else [])
    return [
        rule["Properties"]
        for template in templates
        for rule in resources(template, "AWS::Events::Rule").values()
        if ALARM_EVENT_SOURCE in rule["Properties"].get("EventPattern", {}).get("source", [])
    ]


def test_the_shipped_stages_choose_their_reaction(dev: Synth, prod: Synth) -> None:
    assert (dev.stage.monitoring.reaction, prod.stage.monitoring.reaction) == ("notify", "retrain")


def test_a_notify_stage_has_no_rule_on_its_alarms_and_the_function_no_retraining(dev: Synth) -> None:
    trigger = dev.stacks.ml.trigger
    assert (trigger.retrain_rule, trigger.retrain_dead_letter_queue) == (None, None)
    assert _rules_on_alarms(dev) == []
    env = dev.props(trigger.function.function)["Environment"]["Variables"]
    assert not {RAW_BUCKET_ENV, RETRAIN_ALARMS_ENV, RETRAIN_INTERVAL_ENV} & set(env)
    assert trigger_settings.load_settings(env).retraining is None
    permissions = resources(dev.ml, "AWS::Lambda::Permission").values()
    assert [flatten(p["Properties"]["SourceArn"]) for p in permissions] == [
        f"<{dev.logical_id(trigger.rule)}>"
    ]


def test_the_retrain_rule_matches_exactly_the_stage_s_monitoring_alarms_entering_alarm(prod: Synth) -> None:
    synth = prod
    trigger = _retraining(synth)
    stage = synth.stage
    rule = synth.props(trigger.retrain_rule)
    assert rule["Name"] == retrain_rule_name(stage) and rule["State"] == "ENABLED"
    names = sorted(monitoring_alarm_names(stage).values())
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": names, "state": {"value": ["ALARM"]}},
    }
    # The names the Serving stack gives its alarms, without a reference into that stack.
    serving = [
        alarm["Properties"]["AlarmName"]
        for alarm in resources(synth.serving, "AWS::CloudWatch::Alarm").values()
    ]
    assert set(names) <= set(serving)
    assert _rules_on_alarms(synth) == [rule]


@pytest.mark.parametrize(
    ("change", "matches"),
    [
        ({}, True),
        ({"previous": "INSUFFICIENT_DATA"}, True),
        ({"state": "OK", "previous": "ALARM"}, False),
        ({"name": "rookery-prod-endpoint-5xx-rate"}, False),
        ({"name": "rookery-dev-endpoint-data-quality-violations"}, False),
    ],
    ids=["OK to ALARM", "INSUFFICIENT_DATA to ALARM", "back to OK", "a rollback alarm", "another stage's"],
)
def test_eventbridge_sends_only_the_stage_s_alarms_entering_alarm(
    prod: Synth, change: dict[str, str], matches: bool
) -> None:
    """The synthesized pattern, matched as EventBridge matches it (moto's implementation)."""
    rule = prod.props(_retraining(prod).retrain_rule)
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    for name in monitoring_alarm_names(prod.stage).values():
        event: Any = _alarm_event(
            change.get("name", name), **{k: v for k, v in change.items() if k != "name"}
        )
        assert pattern.matches_event(event) is matches


def test_the_retrain_rule_invokes_the_function_with_bounded_retries_then_its_own_dead_letters(
    prod: Synth,
) -> None:
    synth = prod
    trigger = _retraining(synth)
    [target] = synth.props(trigger.retrain_rule)["Targets"]
    assert target["Arn"] == arn_of(synth.logical_id(trigger.function.function))
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": RULE_RETRIES, "MaximumEventAgeInSeconds": 7200}
    queue = trigger.retrain_dead_letter_queue
    assert target["DeadLetterConfig"] == {"Arn": arn_of(synth.logical_id(queue))}
    props = synth.props(queue)
    assert props["KmsMasterKeyId"] == arn_of(synth.logical_id(synth.stacks.ml.queue_key))
    statements = synth.props(synth.stacks.ml.queue_key)["KeyPolicy"]["Statement"]
    [key] = [s for s in statements if s.get("Sid") == "EventBridgeRetrainRuleDeadLetters"]
    assert flatten(key["Condition"]["ArnEquals"]["aws:SourceArn"]).endswith(
        f":rule/{retrain_rule_name(synth.stage)}"
    )
    [rule] = [r for r in ROOKERY_RULES.rules if r.id == "Rookery-L2"]
    assert list(rule.check(synth.ml)) == []


def test_eventbridge_may_invoke_the_function_only_for_its_two_rules(prod: Synth) -> None:
    synth = prod
    trigger = _retraining(synth)
    permissions = [p["Properties"] for p in resources(synth.ml, "AWS::Lambda::Permission").values()]
    assert all(
        p["Principal"] == "events.amazonaws.com"
        and p["Action"] == "lambda:InvokeFunction"
        and p["FunctionName"] == arn_of(synth.logical_id(trigger.function.function))
        for p in permissions
    )
    assert sorted(json.dumps(p["SourceArn"]) for p in permissions) == sorted(
        json.dumps(arn_of(synth.logical_id(rule))) for rule in (trigger.rule, trigger.retrain_rule)
    )


def test_an_alarm_run_reads_the_pipeline_s_default_input_and_registers_for_approval(prod: Synth) -> None:
    """What the function reads from its environment starts a run whose parameters are the input only, on
    the raw prefix the pipeline's own default names; registration keeps its default, PendingManualApproval."""
    synth = prod
    trigger = _retraining(synth)
    stage = synth.stage
    env = synth.props(trigger.function.function)["Environment"]["Variables"]
    assert json.loads(env[RETRAIN_ALARMS_ENV]) == sorted(monitoring_alarm_names(stage).values())
    assert env[RETRAIN_INTERVAL_ENV] == str(stage.monitoring.retrain_min_interval_hours)
    markers = Markers()
    [pipeline] = resources(synth.ml, "AWS::SageMaker::Pipeline").values()
    definition = json.loads(
        markers.text(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
    )
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    raw = markers.text(env[RAW_BUCKET_ENV])
    assert defaults[INPUT_DATA_URI] == f"s3://{raw}/{stage.data.layout.data_prefix(stage.dataset)}"
    assert defaults[MODEL_APPROVAL_STATUS] == "PendingManualApproval" and stage.ml.requires_approval

    # The function's own cold-start validation and plan, on the synthesized environment (literal: the
    # stage is pinned to its account): the run's only parameter is the pipeline's own default input.
    settings = trigger_settings.load_settings(env)
    start = plan(parse_event(_alarm_event(monitoring_alarm_names(stage)["data-quality"])), settings)
    assert isinstance(start, Start)
    assert start.parameters == ((INPUT_DATA_URI, defaults[INPUT_DATA_URI]),)
    assert start.rate_limit is not None
    assert start.rate_limit.interval.total_seconds() == stage.monitoring.retrain_min_interval_hours * 3600


def test_retrain_props_that_could_not_work_are_refused() -> None:
    with pytest.raises(
        PropsError, match=r"RetrainProps\.alarm_names = \(\): name each monitoring alarm once"
    ):
        RetrainProps(rule_name="r", alarm_names=(), min_interval_hours=24)
    with pytest.raises(PropsError, match=r"RetrainProps\.min_interval_hours = 0: retraining runs need"):
        RetrainProps(rule_name="r", alarm_names=("a",), min_interval_hours=0)
    retrain = RetrainProps(rule_name="same", alarm_names=("a",), min_interval_hours=1)
    with pytest.raises(PropsError, match=r"TriggerProps\.retrain = .*names the object rule 'same'"):
        TriggerProps(
            qualifier="rookery-dev",
            rule_name="same",
            pipeline_name="p",
            pipeline_arn="arn",
            data_prefix="penguins/",
            error_prefix="errors/",
            retrain=retrain,
        )
