"""The local Firehose: producer records through the real transform Lambda into the local raw bucket.

``models`` (the delivery stream, records and delivery), ``responses`` (the transformation response,
prefixes, object names and error records Firehose writes), ``exceptions``; ``transform`` runs the
function as Lambda does (``worker.py`` in a fresh process), ``landing`` lands a data file where
Firehose would (``rookery local run --data``).
"""

from __future__ import annotations

from emulators.firehose.exceptions import DataFileError, IngestionError
from emulators.firehose.landing import land
from emulators.firehose.models import Delivery, DeliveryStream, FailedRecord, ProducerRecord, deliver

__all__ = [
    "DataFileError",
    "Delivery",
    "DeliveryStream",
    "FailedRecord",
    "IngestionError",
    "ProducerRecord",
    "deliver",
    "land",
]
