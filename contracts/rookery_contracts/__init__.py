"""The facts rookery's shipped artifacts share with the platform that builds and runs them.

Standard library only: the project image (``/opt/program/rookery_contracts``) and each Lambda bundle
carry a copy of this package, and the stage model, the pipeline builder, the emulators, the CDK
constructs and the CLI import the same modules. One module per concern:

- :mod:`rookery_contracts.schema`: the dataset schema and its validation;
- :mod:`rookery_contracts.env`: the environment variables the image and the functions read;
- :mod:`rookery_contracts.metrics`: the training metrics, how the image logs them, how SageMaker parses them;
- :mod:`rookery_contracts.model_layout`: the files of a trained model;
- :mod:`rookery_contracts.evaluation`: the layout of ``evaluation.json``;
- :mod:`rookery_contracts.ingest`: what the Firehose transform receives and stamps on every record;
- :mod:`rookery_contracts.pipeline`: the pipeline parameter the trigger function fills;
- :mod:`rookery_contracts.raw_objects`: which objects below the dataset's prefix are training data;
- :mod:`rookery_contracts.invocations`: what one endpoint invocation may carry.
- :mod:`rookery_contracts.deployment`: which model version an endpoint serves, shared by the AWS
  deployer and the local endpoint.
- :mod:`rookery_contracts.monitoring`: the monitoring container contract, baseline files and metrics.
"""
