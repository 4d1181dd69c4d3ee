"""Stacks split by lifecycle; each only wires constructs (names ``Rookery-<stage>-<Component>``).

The control ids the modules cite (V1, D1b, T1-T6, ...) are those of ``docs/controls.md``.
"""
