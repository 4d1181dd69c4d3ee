"""``rookery demo``: the front door. Audit the stage it deploys, ingest the bundled penguins through the
real Firehose transform, run the pipeline locally, approve, serve, score over HTTP, monitor the
captured traffic, swap and roll back versions, and write an HTML report.

The demo orchestrates the local emulators (``emulators/``) and emulates nothing itself. Modules:
``dataset`` (the bundled penguins and the demo's input records), ``synthetic`` (a synthetic dataset
of any size, for tests and benchmarks), ``audit`` (synthesize and audit the stages), ``scoring``
(score the test split over HTTP), ``monitoring`` (the test split and a shifted copy, each judged by
the monitoring job), ``report`` (the self-contained HTML report) and ``run`` (the
phases, in order). Importing the package is cheap; each module imports what it needs.
"""
