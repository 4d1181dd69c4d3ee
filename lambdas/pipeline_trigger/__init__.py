"""Pipeline trigger Lambda: starts the SageMaker pipeline once per new object in the raw bucket and, where
the stage's monitoring reaction is ``retrain``, once per monitoring alarm entering ALARM (rate-limited).

Deployed as package ``pipeline_trigger`` with handler ``pipeline_trigger.handler.lambda_handler``.
``settings`` lists its environment, ``plan`` turns an event into a decision (pure), ``executions``
starts the pipeline idempotently.
"""
