"""CDK constructs, one per concern. Stacks only wire them; each validates its settings first.

The control ids the modules cite (D1b, N6, T6, ...) are those of ``docs/controls.md``.
"""
