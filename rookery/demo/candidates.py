"""Candidate versions for a deployment, made from a real registered model package.

- :func:`retrained_candidate`: a new version holding the same trained model, as a retrain on the
  same data registers it: a good candidate.
- :func:`feature_mismatch_candidate`: a model archive whose booster and preprocessor come from
  different feature sets (the preprocessor was refitted without one category level, the booster
  was not). The project image checks the two against each other when it loads the model and
  refuses to start, so the new fleet never becomes healthy: the deployment fails before any
  traffic moves.
- :func:`faulty_candidate`: the same model in a broken serving image: a stand-in container
  (``faulty_container/serve``) that passes its health check and then answers every invocation
  with 500 (``errors``) or too slowly for the latency SLO (``slow``). The project image itself
  cannot be made to fail this way short of a bug, which is why the stand-in exists: it is the
  candidate the rollback alarms stop.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any, Final, Literal

from emulators.core.home import LocalHome
from emulators.core.images import ImageMap, Program
from emulators.s3 import LocalS3
from emulators.sagemaker.models import LocalRegistry, ModelPackage

FAULTY_CONTAINER: Final = Path(__file__).resolve().parent / "faulty_container"
FAULTY_IMAGE: Final = "local/rookery-faulty-serving:{fault}"
PENDING: Final = "PendingManualApproval"
PREPROCESSOR: Final = "preprocessor.json"
MISSING_LEVEL: Final = "__missing__"

Fault = Literal["errors", "slow"]


def register_version(
    home: LocalHome,
    base: ModelPackage,
    *,
    description: str,
    model_data_url: str | None = None,
    image: str | None = None,
    environment: dict[str, str] | None = None,
    approval_status: str = PENDING,
) -> ModelPackage:
    """A new version of ``base``'s group: its inference specification with the given parts replaced."""
    spec: dict[str, Any] = dict(base.inference_spec)
    if model_data_url is not None:
        spec["model_data_url"] = model_data_url
    if image is not None:
        spec["image"] = image
    if environment is not None:
        spec["environment"] = {**dict(spec.get("environment") or {}), **environment}
    parts = base.arn.split(":")
    return LocalRegistry(home).create(
        base.group,
        region=parts[3],
        account=parts[4],
        approval_status=approval_status,
        inference_spec=spec,
        model_metrics=dict(base.model_metrics),
        metrics=dict(base.metrics),
        execution_id=base.execution_id,
        description=description,
    )


def retrained_candidate(
    home: LocalHome, base: ModelPackage, *, approval_status: str = PENDING
) -> ModelPackage:
    """A good candidate: the same trained model registered again as a new version."""
    return register_version(
        home, base, description=f"retrained from {base.ref}", approval_status=approval_status
    )


def feature_mismatch_candidate(
    home: LocalHome, base: ModelPackage, *, approval_status: str = PENDING
) -> ModelPackage:
    """A candidate whose preprocessor encodes one feature fewer than its booster was trained on."""
    archive = LocalS3(home).path(str(base.inference_spec["model_data_url"]))
    members: dict[str, bytes] = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is not None:
                members[member.name] = extracted.read()
    name = next((n for n in members if Path(n).name == PREPROCESSOR), None)
    if name is None:
        raise ValueError(f"{archive} holds no {PREPROCESSOR}; it is not a rookery model")
    preprocessor = json.loads(members[name])
    column = next((c for c in preprocessor["categorical"] if len(c["levels"]) > 2), None)
    if column is None:
        raise ValueError(f"{base.ref}: no categorical column with a level to drop")
    dropped = next(level for level in column["levels"] if level != MISSING_LEVEL)
    column["levels"] = [level for level in column["levels"] if level != dropped]
    preprocessor["feature_names"] = [
        n for n in preprocessor["feature_names"] if n != f"{column['name']}={dropped}"
    ]
    members[name] = json.dumps(preprocessor, indent=2).encode()
    bucket = str(base.inference_spec["model_data_url"]).removeprefix("s3://").split("/", 1)[0]
    uri = f"s3://{bucket}/candidates/{base.group}-{uuid.uuid4().hex[:12]}/model.tar.gz"
    target = LocalS3(home).path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for member_name, data in members.items():
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return register_version(
        home,
        base,
        description=f"{base.ref}'s booster with a preprocessor refitted without {column['name']}={dropped}",
        model_data_url=uri,
        approval_status=approval_status,
    )


def faulty_image(fault: Fault) -> tuple[str, Program]:
    """The stand-in serving image for ``fault``: its URI and the program that runs for it."""
    return FAULTY_IMAGE.format(fault=fault), Program(
        program_dir=FAULTY_CONTAINER, python=Path(sys.executable)
    )


def faulty_candidate(
    home: LocalHome,
    base: ModelPackage,
    images: ImageMap,
    *,
    fault: Fault = "errors",
    delay_ms: int = 0,
    approval_status: str = PENDING,
) -> tuple[ModelPackage, ImageMap]:
    """A candidate in a broken serving image, and ``images`` extended so the endpoint can run it."""
    uri, program = faulty_image(fault)
    package = register_version(
        home,
        base,
        description=f"{base.ref} in a serving image that answers {'500' if fault == 'errors' else 'slowly'}",
        image=uri,
        environment={"ROOKERY_FAULT": fault, "ROOKERY_FAULT_DELAY_MS": str(delay_ms)},
        approval_status=approval_status,
    )
    return package, ImageMap({**images.images, uri: program})
