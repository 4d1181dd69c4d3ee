"""Every version of the stage's model package group, as the registry lists them now.

``ListModelPackages`` sorts by creation time, ascending, unless told otherwise, and returns one page
at a time: the listing asks for the newest first and reads every page, and the decision sorts by
version number itself (``rookery_contracts.deployment.highest_approved``), so neither the API's
order nor its page size can hide the highest approved version.
"""

from __future__ import annotations

from typing import Any

from rookery_contracts.deployment import PackageVersion


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
