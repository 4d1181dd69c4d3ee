"""The audit gates: rookery's own rule pack, the acknowledgment register, cfn-lint, and the reviewer's report.

Every module here except ``plugin`` and ``acknowledge`` is pure Python over template and
assembly JSON (no CDK import), so ``rookery audit`` and ``rookery demo`` can reuse it.
"""
