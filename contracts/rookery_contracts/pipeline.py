"""The pipeline's interface to the function that starts it: the parameter carrying the input data, and
the monitoring alarm events that start a retraining run.

The pipeline definition declares the parameter; the trigger Lambda fills it with
``s3://<raw bucket>/<dataset>/``. The retrain rule matches alarm events by these values and the
function reads them back.
"""

from __future__ import annotations

from typing import Final

INPUT_DATA_PARAMETER: Final = "InputDataUri"

# CloudWatch's alarm events on the default event bus, and the state that starts a retraining run.
ALARM_EVENT_SOURCE: Final = "aws.cloudwatch"
ALARM_EVENT_TYPE: Final = "CloudWatch Alarm State Change"
ALARM_STATE: Final = "ALARM"
