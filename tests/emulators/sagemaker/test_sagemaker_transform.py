"""Batch transform requests: records packed up to the payload limit, in order
(``emulators/sagemaker/steps/transform.py``)."""

from __future__ import annotations

import pytest

from emulators.sagemaker.steps.transform import batches


def test_batches_pack_records_up_to_the_payload_limit_in_order() -> None:
    data = b"".join(b'{"n": %d}\n' % i for i in range(100))
    multi = list(batches(data, "Line", "MultiRecord", limit=100))
    assert sum(n for n, _ in multi) == 100 and all(len(body) <= 100 for _, body in multi)
    assert b"".join(body for _, body in multi) == data
    single = list(batches(data, "Line", "SingleRecord", limit=6 * 1024 * 1024))
    assert len(single) == 100 and single[7][1] == b'{"n": 7}\n'
    assert list(batches(data, "None", "MultiRecord", limit=10_000)) == [(1, data)]
    with pytest.raises(ValueError, match="record 1 is 20 bytes, above MaxPayloadInMB"):
        list(batches(b"x" * 20 + b"\n", "Line", "MultiRecord", limit=10))
