"""``rookery demo``: the front door. Audit every stage, ingest the bundled penguins through the real
Firehose transform, run the pipeline locally, approve, serve, score over HTTP and write an HTML report.

The demo orchestrates the local emulators (``emulators/``) and emulates nothing itself. Modules:
``dataset`` (the bundled penguins and the demo's input records), ``synthetic`` (a synthetic dataset
of any size, for tests and benchmarks), ``audit`` (synthesize and audit every stage), ``scoring``
(score the test split over HTTP), ``report`` (the self-contained HTML report) and ``run`` (the
phases, in order). Importing the package is cheap; each module imports what it needs.
"""
