"""Random sampling that depends on the seed and the round only, so a resumed job trains the same trees.

XGBoost draws row samples (``subsample``) from a process-wide generator and column samples
(``colsample_by*``) from a generator its tree updater seeds once, when it is built. Neither state
is part of a saved model: a job resumed from a checkpoint would continue with fresh generators and
grow different trees from the resume round on (another stopping round, other predictions, another
decision threshold). Two settings make every round's draws a function of ``(seed, round)`` alone:

* ``seed_per_iteration``: XGBoost reseeds its generator from the seed and the round number before
  each round;
* :func:`fresh_round`: the tree updaters are rebuilt before each round (``load_config`` of the
  booster's own configuration), so the column sampler is seeded from that reseeded generator.

With several hosts, the column sampler's seed is broadcast from the first host when it is built,
so every host samples the same columns.
"""

from __future__ import annotations

from typing import Any, Final

BOOSTER_PARAMS: Final = {"seed_per_iteration": True}


def fresh_round(booster: Any) -> None:
    """Rebuild the booster's tree updaters (and their column sampler) before the next round."""
    booster.load_config(booster.save_config())
