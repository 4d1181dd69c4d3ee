"""CDK constructs, one per concern. Stacks only wire them; each validates its settings first."""
