"""Every version of the stage's model package group, as the registry lists them now, and the monitoring
baseline one version carries.

``ListModelPackages`` sorts by creation time, ascending, unless told otherwise, and returns one page
at a time: the listing asks for the newest first and reads every page, and the decision sorts by
version number itself (``rookery_contracts.deployment.highest_approved``), so neither the API's
order nor its page size can hide the highest approved version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rookery_contracts.deployment import PackageVersion
from rookery_contracts.monitoring import baseline_root


def list_versions(client: Any, group: str) -> list[PackageVersion]:
    """All versions of ``group`` (approved, rejected and pending), newest first."""
    pages = client.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group,
        ModelPackageType="Versioned",
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    return [
        PackageVersion.from_summary(summary)
        for page in pages
        for summary in page.get("ModelPackageSummaryList", [])
    ]


@dataclass(frozen=True)
class Baseline:
    """A version's monitoring baseline: the Baseline step's output prefix, or None and why it has none."""

    uri: str | None
    reason: str = ""


def read_baseline(client: Any, arn: str) -> Baseline:
    """The baseline ``DescribeModelPackage`` names in the version's ``DriftCheckBaselines``.

    A version registered without the pipeline's Baseline step (by hand, for instance) has none: it
    deploys with monitoring off, and ``reason`` says why.
    """
    baselines = client.describe_model_package(ModelPackageName=arn).get("DriftCheckBaselines")
    if not baselines:
        return Baseline(
            None, "it carries no DriftCheckBaselines (registered without the pipeline's Baseline step)"
        )
    try:
        return Baseline(baseline_root(baselines))
    except ValueError as error:
        return Baseline(None, str(error))
