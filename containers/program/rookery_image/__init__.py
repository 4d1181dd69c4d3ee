"""rookery's project image: preprocessing, training, evaluation and serving code on the SageMaker contract.

Shipped alone as ``/opt/program``: it imports nothing from the rest of the repository but
``rookery_contracts``, which the image build copies into ``/opt/program``. Only
:mod:`rookery_image.contract` knows where SageMaker puts things; everything else is pure logic
that the thin entrypoints (``train``, ``serve``, ``preprocess.py``, ``evaluate.py``) call.
"""

__version__ = "0.1.0"
