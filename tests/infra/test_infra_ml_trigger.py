"""The pipeline trigger on ``Rookery-<stage>-ML``: rule pattern, target retries and DLQ, async config, L1.

The handler's behaviour under moto (duplicate event, error prefix, malformed event) is proven in
``tests/lambdas/test_trigger_moto.py``; these tests prove the wiring that feeds it.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_testing import Synth, arn_of, ref, resources

from infra.audit.rules import ROOKERY_RULES
from infra.audit.template import flatten
from infra.constructs.function import RUNTIME
from infra.constructs.trigger import ASYNC_RETRIES, RULE_RETRIES
from pipeline_trigger import settings as trigger_settings
from pipelines.parameters import INPUT_DATA_URI
from stage.names import bucket_name, pipeline_name, trigger_rule_name

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
    [events] = [s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}]
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
