"""Firehose data-transformation Lambda: validates each ingested record against the stage's dataset schema.

Deployed as package ``firehose_transform`` with handler ``firehose_transform.handler.lambda_handler``.
``settings`` lists its environment (the dataset schema, parsed by ``rookery_contracts.schema``),
``transform`` is the pure per-record logic, ``events`` builds Firehose events for local runs.
"""
