"""Gate sweep: how often a stage's gate passes the same data over many split seeds.

``python -m bench.gate_sweep --stage dev [--data FILE] [--seeds 20] [--confidence C]`` (or
``make gate-sweep STAGE=dev DATA=FILE SEEDS=20``) runs, for each seed, the image's own code in this
process: the split and the fitted preprocessor (``preprocessing.write_splits``), the Train job's
``training.train`` on a temporary ``/opt/ml`` tree, and the Evaluate job's ``evaluation.evaluate``
(threshold choice and the operating-point check), then the pipeline's gate (AUC bar and ``met``). The
data is read and cleaned once. Each seed is judged twice from the same model: with the stage's
confidence and with 0.5, the exact-edge rule (threshold at the edge of the bar on validation, the
test split asked to meet it exactly), so the sweep shows what the margin buys.

Without ``--data`` the stage's dataset must be the bundled penguins. Not a test: the tests assert the
pass rates (tests/containers/test_image_gate.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stage import Stage, load_stage

PROGRAM = Path(__file__).resolve().parents[1] / "containers" / "program"
EXACT_EDGE = 0.5  # the confidence at which both bounds are the measured rate
DEFAULT_SEEDS = 20


@dataclass(frozen=True)
class Judged:
    """One split seed's gate: what the pipeline's condition step reads, at one confidence."""

    auc: float
    threshold: float
    value: float  # the operating point's rate on test (F1 for best_f1)
    sensitivity: float  # on test, at the threshold
    specificity: float
    upper_bound: float | None
    met: bool
    passed: bool


@dataclass(frozen=True)
class SeedResult:
    seed: int
    rows: tuple[int, int, int]  # train, validation, test
    stage_rule: Judged
    exact_edge: Judged


@dataclass(frozen=True)
class Sweep:
    stage: str
    operating_point: str
    auc_bar: float
    confidence: float
    results: tuple[SeedResult, ...]

    def pass_rate(self, exact_edge: bool = False) -> float:
        passed = sum((r.exact_edge if exact_edge else r.stage_rule).passed for r in self.results)
        return passed / len(self.results)


def _image() -> None:
    """Put the project image's package on the path, as /opt/program is in the image."""
    if str(PROGRAM) not in sys.path:
        sys.path.insert(0, str(PROGRAM))
    # As the image's job runner does before importing xgboost (spinning threads cost 25x on shared cores).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def records_of(stage: Stage, data: Path | None) -> Iterable[Mapping[str, Any]]:
    """The records of ``data`` (CSV or JSON lines, read as ``rookery local run --data`` reads it), or
    the bundled penguins."""
    if data is None:
        from rookery.demo.dataset import bundled_rows  # noqa: PLC0415 (the demo's data only when asked for)

        return bundled_rows(stage.dataset)
    from emulators.firehose.landing import read_records  # noqa: PLC0415

    return read_records(data, stage.dataset)


def _hyperparameters(stage: Stage) -> dict[str, str]:
    given = {k: str(v) for k, v in stage.ml.training.hyperparameters.items()}
    # The sweep keeps no checkpoints: one at the last round at most.
    return {**given, "checkpoint_frequency": "100000"}


def sweep(stage: Stage, data: Path | None, seeds: Sequence[int], confidence: float | None = None) -> Sweep:
    """Train and judge the gate once per seed; ``confidence`` overrides the stage's."""
    _image()
    from pipelines.settings import operating_point_arg  # noqa: PLC0415
    from rookery_image import contract, evaluation, metrics, preprocessing, training  # noqa: PLC0415
    from rookery_image.model import ModelBundle  # noqa: PLC0415

    schema = stage.dataset
    level = stage.ml.operating_point.confidence if confidence is None else confidence
    point = metrics.parse_operating_point(operating_point_arg(stage.ml.operating_point))
    split = stage.ml.split
    cleaned = preprocessing.clean(records_of(stage, data), schema)
    results = []
    for seed in seeds:
        options = preprocessing.Options(
            fractions=(split.train, split.validation, split.test), seed=seed, standardize=stage.ml.standardize
        )
        with tempfile.TemporaryDirectory(prefix="rookery-gate-sweep-") as tmp:
            where = contract.Paths(Path(tmp))
            parts, pre = preprocessing.write_splits(cleaned, schema, options, where.channel)
            (where.channel("preprocessor")).mkdir(parents=True)
            (where.channel("preprocessor") / "preprocessor.json").write_text(json.dumps(pre.to_dict()))
            where.input_config.mkdir(parents=True)
            where.hyperparameters.write_text(json.dumps(_hyperparameters(stage)))
            with contextlib.redirect_stdout(io.StringIO()):  # the per-round metric lines
                training.train(where, training.StopFlag())
            bundle = ModelBundle.load(where.model)
            n_features = len(pre.feature_names)
            test, validation = (
                training.read_split(where.channel(name), name, n_features) for name in ("test", "validation")
            )
            judged = [
                evaluation.evaluate(
                    bundle,
                    (test.features, test.labels.astype("int64")),
                    (validation.features, validation.labels.astype("int64")),
                    point,
                    confidence=c,
                )
                for c in (level, EXACT_EDGE)
            ]
        results.append(
            SeedResult(
                seed=seed,
                rows=(len(parts[0]), len(parts[1]), len(parts[2])),
                stage_rule=_judge(judged[0], stage.ml.auc_threshold),
                exact_edge=_judge(judged[1], stage.ml.auc_threshold),
            )
        )
    return Sweep(stage.name, str(point), stage.ml.auc_threshold, level, tuple(results))


def _judge(result: Mapping[str, Any], auc_bar: float) -> Judged:
    """The pipeline's gate on one evaluation.json: AUC at least the bar and the operating point met."""
    from rookery_contracts import evaluation as layout  # noqa: PLC0415

    auc = float(layout.value_at(result, layout.AUC_PATH))
    met = bool(layout.value_at(result, layout.OPERATING_POINT_MET_PATH))
    return Judged(
        auc=auc,
        threshold=float(layout.value_at(result, layout.THRESHOLD_PATH)),
        value=float(layout.value_at(result, layout.OPERATING_POINT_VALUE_PATH)),
        sensitivity=float(layout.value_at(result, f"{layout.METRICS_KEY}.recall.value")),
        specificity=float(layout.value_at(result, f"{layout.METRICS_KEY}.specificity.value")),
        upper_bound=layout.value_at(result, layout.OPERATING_POINT_UPPER_PATH, None),
        met=met,
        passed=met and auc >= auc_bar,
    )


def render(result: Sweep, seconds: float) -> str:
    first = result.results[0]
    lines = [
        f"gate sweep: stage {result.stage}, {len(result.results)} split seeds, rows per split "
        f"{'/'.join(map(str, first.rows))}, gate AUC >= {result.auc_bar:g} and {result.operating_point}",
        f"{'seed':>6} {'AUC':>6} {'threshold':>9} {'test rate':>9} {'upper':>6}  "
        f"{'gate (' + format(result.confidence, '.0%') + ')':<11} exact edge",
    ]
    for r in result.results:
        s, e = r.stage_rule, r.exact_edge
        upper = "" if s.upper_bound is None else f"{s.upper_bound:.3f}"
        lines.append(
            f"{r.seed:>6} {s.auc:>6.3f} {s.threshold:>9.4f} {s.value:>9.3f} {upper:>6}  "
            f"{'pass' if s.passed else 'FAIL':<11} {'pass' if e.passed else 'FAIL'} "
            f"(threshold {e.threshold:.4f}, rate {e.value:.3f})"
        )
    n = len(result.results)
    stage_passed = round(result.pass_rate() * n)
    exact_passed = round(result.pass_rate(exact_edge=True) * n)
    for label, pick in (("stage rule", lambda r: r.stage_rule), ("exact edge", lambda r: r.exact_edge)):
        chosen = [pick(r) for r in result.results]
        lines.append(
            f"mean on test, {label}: sensitivity {sum(j.sensitivity for j in chosen) / n:.3f}, "
            f"specificity {sum(j.specificity for j in chosen) / n:.3f}"
        )
    lines.append(
        f"pass rate: {stage_passed}/{n} ({result.pass_rate():.0%}) with the stage's rule at confidence "
        f"{result.confidence:g}; {exact_passed}/{n} ({result.pass_rate(exact_edge=True):.0%}) with the "
        f"exact-edge rule; {seconds:.1f} s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gate_sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument(
        "--data", type=Path, default=None, help="CSV or JSON lines (default: bundled penguins)"
    )
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="number of split seeds, 0..N-1")
    parser.add_argument("--confidence", type=float, default=None, help="override the stage's confidence")
    args = parser.parse_args(list(argv or ()))
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    started = time.perf_counter()
    result = sweep(load_stage(args.stage), args.data, range(args.seeds), args.confidence)
    print(render(result, time.perf_counter() - started), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
