"""Lambda entry point for Firehose data transformation: Powertools around the pure ``transform`` module.

The environment is validated at import (cold start), so a misconfigured function fails to
initialise with a message naming the variable. Reasons for failed records go to the log, one
line per record with its ``recordId``, because Firehose's error output carries only the raw data.
The response is kept within Lambda's response limit (``transform.fit_response``).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import (
    KinesisFirehoseDataTransformationRecord,
    KinesisFirehoseDataTransformationResponse,
    KinesisFirehoseEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from firehose_transform.settings import load_settings
from firehose_transform.transform import FirehoseEventError, fit_response, records_of, transform_batch

SETTINGS = load_settings(os.environ)
logger = Logger(service=SETTINGS.service)
tracer = Tracer(service=SETTINGS.service)
metrics = Metrics(namespace=SETTINGS.metrics_namespace, service=SETTINGS.service)


@logger.inject_lambda_context(clear_state=True)  # keys appended below are per invocation
# The response is the whole batch of data: keep it out of the trace.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        records_of(event)
        firehose_event = KinesisFirehoseEvent(event)
        outcomes = fit_response(transform_batch(firehose_event.records, SETTINGS.schema))
    except FirehoseEventError as exc:
        # Raising makes Firehose retry the batch and then write it under the error prefix.
        logger.error("rejected a malformed Firehose event", extra={"reason": str(exc)})
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
        raise
    logger.append_keys(delivery_stream=firehose_event.get("deliveryStreamArn"))

    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        if not outcome.over_budget:
            logger.warning(
                "record failed validation", extra={"record_id": outcome.record_id, "reason": outcome.reason}
            )
    over_budget = [o for o in failed if o.over_budget]
    if over_budget:
        # One line for them all: a batch that overflows has tens of thousands of tiny records.
        logger.error(
            "valid records did not fit the response",
            extra={
                "records": len(over_budget),
                "first_record_id": over_budget[0].record_id,
                "last_record_id": over_budget[-1].record_id,
                "reason": over_budget[0].reason,
            },
        )
    metrics.add_metric(name="RecordsOverResponseLimit", unit=MetricUnit.Count, value=len(over_budget))
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=len(outcomes))
    metrics.add_metric(name="RecordsOk", unit=MetricUnit.Count, value=len(outcomes) - len(failed))
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=len(failed))
    logger.info("batch transformed", extra={"records": len(outcomes), "failed": len(failed)})

    if not outcomes:
        # Powertools refuses an empty response; Firehose never sends an empty batch, but answer in kind.
        return {"records": []}
    response = KinesisFirehoseDataTransformationResponse()
    for outcome in outcomes:
        response.add_record(
            KinesisFirehoseDataTransformationRecord(
                record_id=outcome.record_id, result=outcome.result, data=outcome.data
            )
        )
    return response.asdict()
