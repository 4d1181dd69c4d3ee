"""Local SageMaker Runtime: ``InvokeEndpoint`` against a registered model served on 127.0.0.1."""
