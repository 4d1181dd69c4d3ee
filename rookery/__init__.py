"""rookery: a secure SageMaker ML platform as code (config model, CLI and shared helpers)."""

__version__ = "0.1.0"
