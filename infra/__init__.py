"""The infrastructure floor: CDK constructs, the stacks that wire them, and the audit.

Control ids cited in this package (V1, D1b, N6, T1-T6, ...) are those of ``docs/controls.md``,
rendered from ``infra.audit.controls``.
"""
