"""The fitted preprocessing artifact: imputation, one-hot encoding and optional standardization.

The preprocess job fits it and writes ``preprocessor.json``; training copies it into the model, and
the endpoint loads it so clients send raw records. :meth:`Preprocessor.encode` is the single place a
raw record becomes a model row, for the CSV splits and for live requests alike (numpy only: the
image does not carry pandas).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from rookery_image.columns import TextColumn

FORMAT = "rookery-preprocessor/1"
# The explicit level for a missing category; the underscores keep it apart from real values.
MISSING_LEVEL = "__missing__"


class UnknownCategory(Exception):  # noqa: N818 (a data condition the caller reports, not a crash)
    def __init__(self, record: int, column: str, value: str, known: Sequence[str]) -> None:
        super().__init__(f"record {record + 1}: {column!r} = {value!r} is not a known category")
        self.record = record
        self.column = column
        self.value = value
        self.known = tuple(known)


@dataclass(frozen=True)
class NumericColumn:
    name: str
    median: float
    mean: float
    std: float


@dataclass(frozen=True)
class CategoricalColumn:
    name: str
    levels: tuple[str, ...]


@dataclass(frozen=True)
class Preprocessor:
    dataset: str
    target: str
    positive_class: str
    negative_class: str
    id_column: str | None
    numeric: tuple[NumericColumn, ...]
    categorical: tuple[CategoricalColumn, ...]
    standardize: bool

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """Feature fields of a raw record, in CSV order: numeric, then categorical."""
        return tuple(c.name for c in self.numeric) + tuple(c.name for c in self.categorical)

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        """Columns of the encoded matrix (and of the CSV splits after the label)."""
        names = [c.name for c in self.numeric]
        for col in self.categorical:
            names.extend(f"{col.name}={level}" for level in col.levels)
        return tuple(names)

    @cached_property
    def _medians(self) -> np.ndarray:
        return np.array([c.median for c in self.numeric], dtype=np.float64)

    @cached_property
    def _means(self) -> np.ndarray:
        return np.array([c.mean for c in self.numeric], dtype=np.float64)

    @cached_property
    def _stds(self) -> np.ndarray:
        return np.array([c.std for c in self.numeric], dtype=np.float64)

    @cached_property
    def _level_index(self) -> tuple[dict[str, int], ...]:
        return tuple({level: i for i, level in enumerate(col.levels)} for col in self.categorical)

    @cached_property
    def _offsets(self) -> tuple[int, ...]:
        offsets, at = [], len(self.numeric)
        for col in self.categorical:
            offsets.append(at)
            at += len(col.levels)
        return tuple(offsets)

    def encode(
        self,
        numeric: np.ndarray,
        categories: Sequence[Sequence[str | None] | TextColumn],
        *,
        unknown: str = "error",
    ) -> np.ndarray:
        """Encode ``n`` records into an ``(n, len(feature_names))`` float32 matrix.

        ``numeric`` is ``(n, len(self.numeric))`` float64 with NaN for missing values; ``categories``
        holds one sequence of texts (None = missing) or one :class:`TextColumn` per categorical
        column. An unseen level raises :class:`UnknownCategory` unless ``unknown == "ignore"``, which
        encodes it as no known level.
        """
        n = numeric.shape[0]
        out = np.zeros((n, len(self.feature_names)), dtype=np.float32)
        if self.numeric:
            values = np.where(np.isnan(numeric), self._medians, numeric)
            if self.standardize:
                values = (values - self._means) / self._stds
            out[:, : len(self.numeric)] = values
        rows = np.arange(n)
        for col, index, offset, texts in zip(
            self.categorical, self._level_index, self._offsets, categories, strict=True
        ):
            missing = index[MISSING_LEVEL]
            if isinstance(texts, TextColumn):  # translate each level once, not each row
                table = np.fromiter(
                    (missing if text is None else index.get(text, -1) for text in texts.levels),
                    dtype=np.intp,
                    count=len(texts.levels),
                )
                codes = table[texts.codes]
            else:
                codes = np.fromiter(
                    (missing if text is None else index.get(text, -1) for text in texts),
                    dtype=np.intp,
                    count=n,
                )
            known = codes >= 0
            if not known.all():
                if unknown != "ignore":
                    at = int(np.flatnonzero(~known)[0])
                    raise UnknownCategory(at, col.name, str(texts[at]), col.levels)
                out[rows[known], offset + codes[known]] = 1.0
            else:
                out[rows, offset + codes] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "dataset": self.dataset,
            "target": {
                "column": self.target,
                "positive_class": self.positive_class,
                "negative_class": self.negative_class,
            },
            "id_column": self.id_column,
            "standardize": self.standardize,
            "numeric": [
                {"name": c.name, "median": c.median, "mean": c.mean, "std": c.std} for c in self.numeric
            ],
            "categorical": [{"name": c.name, "levels": list(c.levels)} for c in self.categorical],
            "missing_level": MISSING_LEVEL,
            "feature_names": list(self.feature_names),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Preprocessor:
        """Rebuild from ``to_dict`` output; ValueError naming what is wrong otherwise."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ValueError(
                f"format is {found!r}, expected {FORMAT!r} (written by rookery's preprocess job)"
            )
        try:
            target = raw["target"]
            numeric = tuple(
                NumericColumn(str(c["name"]), float(c["median"]), float(c["mean"]), float(c["std"]))
                for c in raw["numeric"]
            )
            categorical = tuple(
                CategoricalColumn(str(c["name"]), tuple(str(v) for v in c["levels"]))
                for c in raw["categorical"]
            )
            pre = cls(
                dataset=str(raw["dataset"]),
                target=str(target["column"]),
                positive_class=str(target["positive_class"]),
                negative_class=str(target["negative_class"]),
                id_column=raw.get("id_column"),
                numeric=numeric,
                categorical=categorical,
                standardize=bool(raw["standardize"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"field {exc} is missing or malformed") from None
        if any(MISSING_LEVEL not in c.levels for c in categorical):
            raise ValueError(f"every categorical column needs the {MISSING_LEVEL!r} level")
        if any(c.std <= 0 for c in numeric):
            raise ValueError("a numeric column has a non-positive std")
        return pre


def fit(
    *,
    dataset: str,
    target: str,
    positive_class: str,
    negative_class: str,
    id_column: str | None,
    numeric_names: Sequence[str],
    numeric_train: np.ndarray,
    categorical_names: Sequence[str],
    categorical_levels: Sequence[Sequence[str]],
    standardize: bool,
) -> Preprocessor:
    """Fit imputation and scaling on the training rows; take category levels as given.

    Medians, means and standard deviations come from the training split only. Levels are every
    value seen in the cleaned data: a level that happens to fall only in validation or test gets a
    column that is all zeros in training (the model ignores it), and batch transform of the test
    split never meets an "unknown" category.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column is reported just below
        medians = np.nanmedian(numeric_train, axis=0) if len(numeric_names) else np.array([])
    empty = [name for name, m in zip(numeric_names, medians, strict=True) if np.isnan(m)]
    if empty:
        raise ValueError(f"numeric columns {empty} have no values in the training split")
    imputed = np.where(np.isnan(numeric_train), medians, numeric_train)
    means = imputed.mean(axis=0) if len(numeric_names) else np.array([])
    stds = imputed.std(axis=0) if len(numeric_names) else np.array([])
    numeric = tuple(
        NumericColumn(name, float(med), float(mean), float(std) if std > 0 else 1.0)
        for name, med, mean, std in zip(numeric_names, medians, means, stds, strict=True)
    )
    return Preprocessor(
        dataset=dataset,
        target=target,
        positive_class=positive_class,
        negative_class=negative_class,
        id_column=id_column,
        numeric=numeric,
        categorical=categorical_columns(categorical_names, categorical_levels),
        standardize=standardize,
    )


def categorical_columns(
    names: Sequence[str], levels: Sequence[Sequence[str]]
) -> tuple[CategoricalColumn, ...]:
    """Each column's levels sorted, then the explicit missing level: the order of the one-hot columns."""
    return tuple(
        CategoricalColumn(name, (*sorted(set(seen) - {MISSING_LEVEL}), MISSING_LEVEL))
        for name, seen in zip(names, levels, strict=True)
    )
