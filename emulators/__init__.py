"""Local emulators of the AWS services rookery uses, one package per service (laid out as moto's backends).

``sagemaker`` (pipeline engine, jobs, model registry), ``sagemaker_runtime`` (endpoints),
``firehose`` (delivery into the raw bucket), ``s3`` (the local bucket mapping); ``core`` holds what
they share (the home folder, container processes, errors). Everything lives under one home folder
(``.rookery/`` by default). No AWS account, no Docker.
"""
