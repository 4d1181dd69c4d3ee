"""Stacks split by lifecycle; each only wires constructs (names ``Rookery-<stage>-<Component>``)."""
