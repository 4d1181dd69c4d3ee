"""Docker-free Lambda packaging, config-derived names, and the interfaces infra shares with other layers."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.endpoint_policies import INTERFACE_ENDPOINT_ACCESS, check_known
from infra.lambda_package import PackagingError, lambda_requirements, package_function, resolve_distributions
from stage import INTERFACE_ENDPOINTS, ConfigError, load_stage, parse_stage
from stage.names import bucket_name, check_bucket_name_length, delivery_stream_name, glue_database_name
from stage.paths import CONTRACTS_DIR

BUNDLED = {
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "jmespath",
    "typing_extensions.py",
    "wrapt",
    "wrapt-stubs",
}
RUNTIME = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six")


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    package_function("firehose_transform", out)
    return out


def test_bundle_holds_the_function_package_the_contracts_and_powertools_with_its_tracer(bundle: Path) -> None:
    tops = {p.name for p in bundle.iterdir()}
    assert tops == {"firehose_transform", "rookery_contracts"} | BUNDLED
    assert (bundle / "firehose_transform" / "handler.py").is_file()
    contracts = sorted(p.relative_to(bundle).as_posix() for p in (bundle / "rookery_contracts").rglob("*"))
    assert contracts == sorted(
        f"rookery_contracts/{p.relative_to(CONTRACTS_DIR / 'rookery_contracts').as_posix()}"
        for p in (CONTRACTS_DIR / "rookery_contracts").glob("*.py")
    ), "the package's modules, nothing else"


def test_bundle_leaves_out_bytecode_native_code_metadata_tests_and_the_runtime_sdk(bundle: Path) -> None:
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pyc", ".so", ".pyd")]
    assert not [p for p in bundle.rglob("*.dist-info")]
    assert not (bundle / "firehose_transform" / "tests").exists()
    assert not {p.name for p in bundle.iterdir()} & set(RUNTIME)


def test_bundling_is_deterministic(bundle: Path, tmp_path: Path) -> None:
    package_function("firehose_transform", tmp_path)
    assert _digest(tmp_path) == _digest(bundle)


def test_handler_runs_from_the_bundle_plus_what_the_lambda_runtime_ships(
    bundle: Path, tmp_path: Path
) -> None:
    """A fresh interpreter without site-packages: the bundle first, then only the AWS SDK (as in Lambda)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in RUNTIME:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source, target_is_directory=source.is_dir())
    probe = (
        "import sys; sys.path[:0] = sys.argv[1:3]\n"
        "import firehose_transform.handler as h, aws_lambda_powertools, wrapt\n"
        "assert aws_lambda_powertools.__file__.startswith(sys.argv[1]), aws_lambda_powertools.__file__\n"
        "print('imported', h.lambda_handler.__name__)\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "eu-west-1",
        "ROOKERY_DATASET_SCHEMA": load_stage("dev").dataset.to_json(),
    }
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", probe, str(bundle), str(runtime)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "imported lambda_handler" in done.stdout


def test_the_bundle_follows_pyprojects_lambda_group() -> None:
    [requirement] = lambda_requirements()
    assert requirement.name == "aws-lambda-powertools" and "tracer" in requirement.extras
    names = {d.metadata["Name"].lower().replace("_", "-") for d in resolve_distributions([requirement])}
    assert names == {"aws-lambda-powertools", "aws-xray-sdk", "jmespath", "typing-extensions", "wrapt"}


def test_a_pin_the_venv_does_not_match_fails_with_the_fix(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[dependency-groups]\nlambda = ["aws-lambda-powertools==0.0.1"]\n')
    with pytest.raises(
        PackagingError, match=r"pyproject pins aws-lambda-powertools==0.0.1; run `make setup`"
    ):
        resolve_distributions(lambda_requirements(pyproject))
    pyproject.write_text("[project]\nname = 'x'\n")
    with pytest.raises(PackagingError, match="has no \\[dependency-groups\\] lambda"):
        lambda_requirements(pyproject)


def test_a_missing_function_folder_fails_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="create lambdas/nope/"):
        package_function("nope", tmp_path)


def test_function_props_validate_name_handler_and_concurrency() -> None:
    from infra.constructs.function import FunctionProps  # noqa: PLC0415

    with pytest.raises(ValueError, match="is not a Python package"):
        FunctionProps(
            qualifier="rookery-dev",
            name="nope",
            handler="nope.handler.lambda_handler",
            description="d",
            reserved_concurrency=1,
        )
    with pytest.raises(ValueError, match="must live in package 'firehose_transform'"):
        FunctionProps(
            qualifier="rookery-dev",
            name="firehose_transform",
            handler="other.h",
            description="d",
            reserved_concurrency=1,
        )
    with pytest.raises(ValueError, match="reserved_concurrency must be at least 1"):
        FunctionProps(
            qualifier="rookery-dev", name="firehose_transform",
            handler="firehose_transform.handler.lambda_handler", description="d", reserved_concurrency=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="set by the construct"):
        FunctionProps(
            qualifier="rookery-dev", name="firehose_transform",
            handler="firehose_transform.handler.lambda_handler", description="d", reserved_concurrency=1,
            environment={"POWERTOOLS_SERVICE_NAME": "x"},
        )  # fmt: skip


# ---------------------------------------------------------------- names and shared interfaces


def test_names_derive_from_the_stage() -> None:
    stage = load_stage("prod")
    assert bucket_name(stage, "raw", account="123456789012", region="eu-west-1") == (
        "rookery-prod-raw-123456789012-eu-west-1"
    )
    assert glue_database_name(stage) == "rookery_prod"
    assert delivery_stream_name(stage) == "rookery-prod-penguins-ingest"
    with pytest.raises(ValueError, match="unknown bucket purpose 'logs'"):
        bucket_name(stage, "logs", account="1", region="r")


def test_a_qualifier_too_long_for_bucket_names_fails_with_the_fix() -> None:
    stage = parse_stage(
        "dev",
        {"prefix": "averyveryverylongpfx", "dataset": load_stage("dev").dataset.to_dict()},
        source="test",
    )
    with pytest.raises(
        ConfigError, match=r"makes S3 bucket names of 64 characters \(limit 63\); shorten 'prefix'"
    ):
        check_bucket_name_length(stage)


def test_every_configurable_endpoint_has_a_policy() -> None:
    assert set(INTERFACE_ENDPOINT_ACCESS) == set(INTERFACE_ENDPOINTS)
    check_known(tuple(INTERFACE_ENDPOINTS))
    with pytest.raises(ValueError, match="no endpoint policy for"):
        check_known(("nope",))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"vpc_cidr": "10.20.0.0/22", "max_azs": 6, "account": "123456789012"},
            "holds 4 /24 subnets but max_azs = 6",
        ),
        ({"max_azs": 3}, "needs a known environment (an environment-agnostic stack sees only 2 AZs)"),
    ],
)
def test_network_settings_cdk_would_reject_later_fail_first_with_the_fix(
    overrides: dict[str, object], message: str
) -> None:
    import aws_cdk as cdk  # noqa: PLC0415

    from infra.app import build_stacks, repo_context  # noqa: PLC0415

    stage = parse_stage("qa", {"dataset": load_stage("dev").dataset.to_dict(), **overrides}, source="test")
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_stacks(cdk.App(context=repo_context()), stage)
