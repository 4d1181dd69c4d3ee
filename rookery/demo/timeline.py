"""The deployment timeline as a PNG (matplotlib, Agg backend, the evaluation plots' plain style).

Three panels over one time axis, seconds after the approval on this machine: the traffic share of
each fleet as the endpoint routed it, with the green fleet's share as the endpoint counted it per
alarm period, under a band naming each stretch of the deployment (the new fleet starting, each bake
and the termination wait with their length at the stage's timing, a rollback); the requests the
clients sent and the ones that failed, per interval; the clients' latency p50 and p99 per interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from rookery.demo.deployment import DeploymentRun

BLUE: Final = "#2f5bd3"
GREEN: Final = "#1a7f37"
FAILED: Final = "#b42318"
REQUESTS: Final = "#c9ced8"
SPAN_SHADES: Final = ("#eef1f6", "#e0e5ee")


def _span_label(what: str, stage_seconds: int | None) -> str:
    return what if stage_seconds is None else f"{what}\n{stage_seconds} s"


def _version(ref: str) -> str:
    return f"version {ref.rsplit('/', 1)[-1]}"


def timeline_png(path: Path, run: DeploymentRun, *, title: str) -> Path:
    """Draw ``run`` into ``path`` (a PNG); returns ``path``."""
    import matplotlib  # noqa: PLC0415 - a second to import; only the report's plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    end = max([run.ended, *(i.start + run.interval_seconds for i in run.intervals)])
    fig, (shares, requests, latency) = plt.subplots(
        3, 1, figsize=(9, 7), dpi=100, sharex=True, gridspec_kw={"height_ratios": [1.2, 1, 1]}
    )
    times = [s.seconds for s in run.shares] + [end]
    shares.step(
        times,
        [100 * s.blue for s in run.shares] + [100 * run.shares[-1].blue],
        where="post",
        color=BLUE,
        lw=2,
        label=f"{_version(run.previous)} (blue)",
    )
    shares.step(
        times,
        [100 * s.green for s in run.shares] + [100 * run.shares[-1].green],
        where="post",
        color=GREEN,
        lw=2,
        label=f"{_version(run.target)} (green)",
    )
    if run.measured:
        shares.scatter(
            [m.seconds for m in run.measured],
            [100 * m.green for m in run.measured],
            color=GREEN,
            marker="o",
            s=14,
            zorder=3,
            label="green, counted per alarm period",
        )
    shares.set(ylabel="traffic share (%)", ylim=(-5, 128), yticks=[0, 25, 50, 75, 100], title=title)
    for number, span in enumerate(run.spans):
        shade = SPAN_SHADES[number % len(SPAN_SHADES)]
        for ax in (shares, requests, latency):
            ax.axvspan(span.start, span.end, color=shade, zorder=0, lw=0)
        shares.text(
            (span.start + span.end) / 2,
            115,
            _span_label(span.what, span.stage_seconds),
            ha="center",
            va="center",
            fontsize=7,
            color="#5b6477",
        )

    starts = [i.start for i in run.intervals]
    width = run.interval_seconds
    requests.bar(
        starts,
        [i.requests for i in run.intervals],
        width=width,
        align="edge",
        color=REQUESTS,
        label="requests",
    )
    requests.bar(
        starts, [i.failures for i in run.intervals], width=width, align="edge", color=FAILED, label="failed"
    )
    requests.set(ylabel=f"per {width:g} s")
    requests.legend(loc="upper left", fontsize=8)

    timed = [i for i in run.intervals if i.p50_ms is not None]
    middles = [i.start + width / 2 for i in timed]
    latency.plot(middles, [i.p50_ms for i in timed], color=BLUE, lw=1.5, label="p50")
    latency.plot(middles, [i.p99_ms for i in timed], color=FAILED, lw=1.5, ls="--", label="p99")
    latency.set(ylabel="client latency (ms)", xlabel="seconds after the approval (on this machine)")
    latency.set_ylim(bottom=0)
    latency.legend(loc="upper left", fontsize=8)

    marks = [(0.0, "approval", "black")]
    if run.full_traffic is not None:
        marks.append((run.full_traffic, "all traffic on green", GREEN))
    if run.restored is not None:
        marks.append((run.restored, "all traffic back on blue", FAILED))
    for ax in (shares, requests, latency):
        for x, label, colour in marks:
            ax.axvline(x, color=colour, ls=":", lw=1.2, label=label if ax is shares else None)
    shares.legend(loc="center left", fontsize=8)
    latency.set_xlim(min(times[0], 0.0), end)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
