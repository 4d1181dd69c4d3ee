"""Control T6: the project image, built from a staged build context as a CDK Docker image asset.

Synthesis stages the build context (:mod:`infra.image_context`: ``containers/Dockerfile``,
``requirements.txt``, ``program/`` with ``rookery_contracts`` inside) into the cloud assembly's
folder and records the asset; ``cdk deploy`` builds and pushes it into the bootstrap's private ECR
repository of the target account and region, tagged by the hash of its content. Synthesis therefore
needs no Docker engine. Every job, model and registered version of the pipeline names exactly this
image.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

from aws_cdk import Stage as CdkStage
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from infra.image_context import stage_build_context

# The staged context's folder inside the cloud assembly (cdk.out), replaced on every synth.
CONTEXT_FOLDER: Final = "rookery-image-context"


class ProjectImage(Construct):
    """Exposes ``asset``, ``image_uri`` (a token) and ``repository`` (the private ECR repository)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        assembly = CdkStage.of(self)
        if assembly is None:
            raise ValueError("ProjectImage must be created inside a CDK app (it stages into the assembly)")
        context = Path(assembly.outdir) / CONTEXT_FOLDER
        shutil.rmtree(context, ignore_errors=True)
        stage_build_context(context)
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=str(context),
            platform=ecr_assets.Platform.LINUX_AMD64,  # SageMaker's ml.* instances run x86_64 images
            display_name="rookery project image",
        )
        self.image_uri: str = self.asset.image_uri
        self.repository: ecr.IRepository = self.asset.repository
