"""The audit gates: rookery's own rule pack, the acknowledgment register, cfn-lint, and the reviewer's report.

``controls`` is the catalogue of security controls (``docs/controls.md``) that the rules, the
report and the comments across the tree cite by id.

Every module here except ``plugin`` and ``acknowledge`` imports no CDK (``run`` drives the pinned
CDK CLI as a subprocess), so ``rookery audit`` and ``rookery demo`` reuse them without jsii.
"""
