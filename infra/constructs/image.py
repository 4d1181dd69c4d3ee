"""Control T6: the project image, built from ``containers/`` as a CDK Docker image asset.

Synthesis only records the asset (the build context is staged into ``cdk.out``); ``cdk deploy``
builds and pushes it into the bootstrap's private ECR repository of the target account and region,
tagged by the hash of its content. Synthesis therefore needs no Docker engine. Every job, model and
registered version of the pipeline names exactly this image.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from stage.paths import CONTAINERS_DIR

BUILD_CONTEXT: Final = CONTAINERS_DIR


class ProjectImage(Construct):
    """Exposes ``asset``, ``image_uri`` (a token) and ``repository`` (the private ECR repository)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        if not (BUILD_CONTEXT / "Dockerfile").is_file():
            raise FileNotFoundError(
                f"{BUILD_CONTEXT / 'Dockerfile'} is missing; the project image cannot be built"
            )
        # containers/.dockerignore decides what enters the build context (and the asset hash).
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=str(BUILD_CONTEXT),
            platform=ecr_assets.Platform.LINUX_AMD64,  # SageMaker's ml.* instances run x86_64 images
            display_name="rookery project image",
        )
        self.image_uri: str = self.asset.image_uri
        self.repository: ecr.IRepository = self.asset.repository
