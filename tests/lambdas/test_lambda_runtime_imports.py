"""Each handler runs with nothing but the standard library, its bundle and what the Lambda runtime ships.

A fresh interpreter without site-packages sees only the function's package, ``rookery_contracts``, the
bundled pure-Python distributions (Powertools with its tracer extra; both by symlink) and the AWS SDK
the runtime provides; the X-Ray SDK's C speed-ups are switched off (the bundle leaves native
extensions out) and Lambda's environment switches tracing on. Then each handler is imported, and the
firehose and trigger handlers are invoked once (each of the deployer's tasks calls AWS).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stage import REPO_ROOT

# Both tests read one probe run: keep them on one xdist worker so it runs once.
pytestmark = pytest.mark.xdist_group("lambda_runtime_imports")

# What the functions' bundle carries (pyproject's `lambda` group resolved) and what the runtime provides.
BUNDLED = ("aws_lambda_powertools", "aws_xray_sdk", "wrapt", "jmespath", "typing_extensions")
RUNTIME = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six")
OWN = ("firehose_transform", "pipeline_trigger", "model_deployer")
# The one rookery package the packager puts next to each function's own (infra.lambda_package).
CONTRACTS = ("rookery_contracts",)

PROBE = r"""
import json, sys
sys.path[:0] = sys.argv[1:3]
from types import SimpleNamespace
context = SimpleNamespace(function_name="f", memory_limit_in_mb=128, aws_request_id="r",
                          invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:f")
import firehose_transform.handler as firehose
from firehose_transform.events import build_firehose_event
import pipeline_trigger.handler as trigger
import model_deployer.handler as deployer
event = {"source": "aws.s3", "detail-type": "Object Created", "time": "2024-05-01T12:00:05Z",
         "detail": {"bucket": {"name": "raw"}, "object": {"key": "errors/x", "etag": "e"}}}
answer = firehose.lambda_handler(build_firehose_event(['{"species": "Adelie"}']), context)
out = {
    "firehose": answer["records"][0]["result"],
    "trigger": trigger.lambda_handler(event, context)["status"],
    "tracing": [not firehose.tracer.disabled, not trigger.tracer.disabled, not deployer.tracer.disabled],
    "modules": sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)
                      - {"__main__", "__mp_main__"}),
}
print("PROBE " + json.dumps(out))
"""


def _link_packages(names: tuple[str, ...], target: Path) -> None:
    for name in names:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"{name} is not installed; run `make setup`"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source, target_is_directory=source.is_dir())


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory, dataset_schema_json: str) -> dict[str, Any]:
    site = tmp_path_factory.mktemp("lambda-site")
    _link_packages(CONTRACTS + BUNDLED + RUNTIME, site)
    env = {
        "PATH": "/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        # Nothing listens here; the SDK sends segments over UDP and never waits for an answer.
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "WRAPT_DISABLE_EXTENSIONS": "1",
        "ROOKERY_DATASET_SCHEMA": dataset_schema_json,
        "PIPELINE_NAME": "rookery-dev-pipeline",
        "DATA_PREFIX": "penguins/",
        "ERROR_PREFIX": "errors/",
        # model_deployer (imported only: each of its tasks calls AWS)
        "SERVING_STACK": "Rookery-dev-Serving",
        "MODEL_PARAMETER_NAME": "ApprovedModelPackageArn",
        "BASELINE_PARAMETER_NAME": "MonitoringBaselineUri",
        "DEPLOYMENT_ROLE_ARN": "arn:aws:iam::123456789012:role/rookery-dev/serving-deployment/Role",
        "MODEL_PACKAGE_GROUP_NAME": "rookery-dev-models",
        "ENDPOINT_NAME": "rookery-dev-endpoint",
        "VARIANT_NAME": "primary",
        "DEPLOYMENT_EVENT_SOURCE": "rookery.deployer",
        "DEPLOYMENT_EVENT_TYPE": "Rookery Model Deployment",
        "DEPLOYMENT_METRIC_NAMESPACE": "Rookery/Deployments",
    }
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", PROBE, str(REPO_ROOT / "lambdas"), str(site)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stdout.splitlines() if ln.startswith("PROBE ")]
    result: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
    return result


def test_the_handlers_work_with_tracing_on(probe: dict[str, Any]) -> None:
    assert probe["firehose"] == "Ok"
    assert probe["trigger"] == "ignored"
    assert probe["tracing"] == [True, True, True]


def test_nothing_outside_the_bundle_and_the_runtime_is_imported(probe: dict[str, Any]) -> None:
    assert set(probe["modules"]) <= {*CONTRACTS, *BUNDLED, *RUNTIME, *OWN}
    assert {"aws_lambda_powertools", "aws_xray_sdk", "boto3", *CONTRACTS, *OWN} <= set(probe["modules"])
