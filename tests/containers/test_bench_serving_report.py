"""The serving benchmark's report: a ratio from results that hold errors gets no verdict."""

from __future__ import annotations

import pytest

from bench import serving
from bench.serving import Result


def result(p50_ms: float, *, requests: int = 100, errors: int = 0) -> Result:
    """A result whose every latency is ``p50_ms`` (so p50 = p99), over one second."""
    return Result(requests, 1.0, [int(p50_ms * 1e6)] * requests, 0.05, errors)


def test_goal_verdicts() -> None:
    assert serving.goal("p50", 1.2, 1.3, at_most=True).endswith("[<= 1.3x]  met")
    assert serving.goal("p50", 1.5, 1.3, at_most=True).endswith("NOT met")
    assert serving.goal("rps", 1.5, 1.4, at_most=False).endswith("[>= 1.4x]  met")
    assert serving.goal("p50", 1.2, 1.3, at_most=True, errors=7).endswith("[<= 1.3x]  INVALID (7 errors)")


def test_report_marks_every_ratio_from_erroneous_results(capsys: pytest.CaptureFixture[str]) -> None:
    limit = {"1": result(0.5), "1/idle": result(0.6), "100": result(0.8), "100/idle": result(0.9)}
    results = {
        (name, n, c): result(1.0)
        for name in ("rookery", "flask+gunicorn")
        for n in serving.SIZES
        for c in serving.CONNECTIONS
    }
    results |= {("http floor", n, 1): result(0.2) for n in serving.SIZES}
    # rookery's 1-record, 1-connection run answered 3 requests with errors (a 4xx/5xx is fast).
    results["rookery", 1, 1] = result(1.0, errors=3)
    serving.report(limit, results, [0.5, 0.6, 0.7])
    lines = capsys.readouterr().out.splitlines()

    def line(start: str) -> str:
        (found,) = [x for x in lines if x.strip().startswith(start)]
        return found

    assert line("p50 vs in-process, 1 record(s), 1 conn").endswith("INVALID (3 errors)")
    assert line("req/s vs Flask+gunicorn, 1 record, 1 conn(s)").endswith("INVALID (3 errors)")
    assert line("p99/p50, 1 record(s), 1 conn(s)").endswith("INVALID (3 errors)")
    assert line("p50 vs in-process, 100 record(s), 1 conn").endswith("1.25x  [<= 1.3x]  met")
    assert line("req/s vs Flask+gunicorn, 1 record, 8 conn(s)").endswith("[>= 1.4x]  NOT met")
    assert line("p99/p50, 1 record(s), 8 conn(s)").endswith("[<= 10.0x]  met")
    assert line("p50 1.000 ms = in-process 0.500").endswith("INVALID (3 errors)")
    assert line("p50 1.000 ms = in-process 0.800").endswith("(the handler running inside a server)")
    assert sum("INVALID" in x for x in lines) == 4
