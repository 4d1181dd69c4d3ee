"""The pipeline engine: scheduling, expressions, parameters, and what each step runner is given."""
