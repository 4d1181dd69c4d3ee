"""Local emulators of the AWS services rookery uses, one package per service, laid out as moto's backends.

``sagemaker`` (pipeline engine, jobs, model registry), ``sagemaker_runtime`` (endpoints),
``firehose`` (delivery into the raw bucket), ``s3`` (the local buckets); each keeps its state in
``models.py``, its wire format in ``responses.py`` and its errors in ``exceptions.py``. ``core``
holds what they share (the home folder, the image map, a job's ``/opt/ml`` sandbox, container
processes, the serve process, the error base) and imports none of them. Everything lives under one
home folder (``.rookery/`` by default). No AWS account, no Docker. See README.md.
"""
