"""The stage config model: the shipped stages load, and every class of invalid input fails with the
field, the bad value and the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rookery_contracts.evaluation import DEFAULT_GATE_CONFIDENCE
from rookery_contracts.hyperparameters import TRAINING_DEFAULTS
from rookery_contracts.schema import DEFAULT_MAX_INVALID_FRACTION
from rookery_image.hyperparameters import parse as parse_hyperparameters
from stage import (
    DEFAULT_ENDPOINTS,
    ESSENTIAL_ENDPOINTS,
    STAGES_DIR,
    ConfigError,
    OperatingPoint,
    Stage,
    available_stages,
    load_stage,
    parse_stage,
)

DATASET: dict[str, Any] = {
    "name": "penguins",
    "target": "sex",
    "positive_class": "female",
    "numeric": ["bill_length_mm", "bill_depth_mm"],
    "categorical": ["species", "island"],
}


def _stage(**overrides: Any) -> dict[str, Any]:
    return {"dataset": dict(DATASET), **overrides}


def _error(raw: dict[str, Any], name: str = "dev", **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_stage(name, raw, source="test.toml", **kwargs)
    return str(raised.value)


# ---------------------------------------------------------------- the shipped stages


def test_the_stages_are_the_files_of_the_stages_folder_dev_and_prod_among_them() -> None:
    assert available_stages() == sorted(p.stem for p in STAGES_DIR.glob("*.toml"))
    assert {"dev", "prod"} <= set(available_stages())


def test_a_stage_file_added_by_a_user_is_a_stage_and_a_broken_one_is_reported_by_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "loans.toml").write_text(
        '[dataset]\nname = "loans"\ntarget = "default"\npositive_class = "yes"\nnumeric = ["income"]\n'
    )
    (tmp_path / "broken.toml").write_text('[dataset]\nname = "loans"\ntarget = "default"\n')
    assert available_stages(tmp_path) == ["broken", "loans"]
    assert load_stage("loans", stages_dir=tmp_path).dataset.numeric == ("income",)
    with pytest.raises(ConfigError) as raised:
        load_stage("broken", stages_dir=tmp_path)
    assert str(raised.value).startswith(f"stage 'broken' ({tmp_path / 'broken.toml'}) is invalid:")
    assert "dataset.positive_class" in str(raised.value)


# Every stage file, shipped or added: each must load.
@pytest.mark.parametrize("name", available_stages())
def test_every_stage_loads_completely(name: str) -> None:
    stage = load_stage(name)
    assert stage.name == name
    assert stage.stack_name("Network") == f"Rookery-{name}-Network"
    assert set(ESSENTIAL_ENDPOINTS) <= set(stage.interface_endpoints)
    assert stage.dataset.target not in stage.dataset.features


def test_prod_is_pinned_protected_and_keeps_its_data() -> None:
    prod = load_stage("prod")
    assert prod.production and prod.account == "123456789012"
    assert prod.termination_protection
    assert prod.data.removal_policy == "retain"
    assert prod.max_azs == 3


def test_dev_is_agnostic_and_destroys_data_only_with_the_flag() -> None:
    dev = load_stage("dev")
    assert dev.account is None
    assert dev.data.removal_policy == "destroy"
    assert dev.removal_destroys_data is False
    assert load_stage("dev", destroy_data=True).removal_destroys_data is True


def test_the_destroy_flag_never_comes_from_the_stage_file() -> None:
    assert "destroy_data_on_delete" not in load_stage("dev", destroy_data=True).model_dump()
    message = _error(_stage(data={"removal_policy": "destroy"}, destroy_data_on_delete=True))
    assert "'destroy_data_on_delete' cannot be set in a stage file" in message
    assert "pass -c destroy_data=true" in message


# ---------------------------------------------------------------- one test per class of invalid input


@pytest.mark.parametrize(
    ("cidr", "fragment"),
    [
        ("10.20.0.0/33", "not a valid IPv4 network"),
        ("not-a-cidr", "not a valid IPv4 network"),
        ("10.20.0.1/16", "not a valid IPv4 network"),  # host bits set
    ],
)
def test_bad_cidr(cidr: str, fragment: str) -> None:
    message = _error(_stage(vpc_cidr=cidr))
    assert f"vpc_cidr = {cidr!r}" in message
    assert fragment in message and "use a block like '10.20.0.0/16'" in message


def test_public_cidr() -> None:
    message = _error(_stage(vpc_cidr="8.8.0.0/16"))
    assert "vpc_cidr = '8.8.0.0/16'" in message and "must be a private (RFC 1918) range" in message


def test_cidr_size_outside_16_to_22() -> None:
    message = _error(_stage(vpc_cidr="10.0.0.0/8"))
    assert "prefix /8 is outside /16../22" in message and "10.20.0.0/16" in message


def test_one_az() -> None:
    message = _error(_stage(max_azs=1))
    assert "max_azs = 1" in message
    assert "at least two Availability Zones" in message


def test_unknown_stage() -> None:
    with pytest.raises(ConfigError) as raised:
        load_stage("nope")
    message = str(raised.value)
    assert "unknown stage 'nope'" in message
    assert "infra/stages/nope.toml" in message
    assert "Known stages: dev, prod" in message
    assert "-c stage=NAME" in message


def test_prod_without_account() -> None:
    message = _error(_stage(production=True, termination_protection=True), name="prod")
    assert "a production stage must name its account" in message and 'account = "123456789012"' in message


def test_prod_that_would_delete_data() -> None:
    raw = _stage(
        production=True,
        account="123456789012",
        termination_protection=True,
        data={"removal_policy": "destroy"},
    )
    assert 'set data.removal_policy = "retain"' in _error(raw, name="prod")


def test_prod_without_termination_protection() -> None:
    raw = _stage(production=True, account="123456789012")
    assert "termination_protection = true" in _error(raw, name="prod")


def test_bad_account() -> None:
    message = _error(_stage(account="12345"))
    assert "account = '12345'" in message and "12 digits" in message


def test_bad_region() -> None:
    message = _error(_stage(region="europe"))
    assert "region = 'europe'" in message and "eu-west-1" in message


def test_unknown_endpoint() -> None:
    message = _error(_stage(interface_endpoints=[*DEFAULT_ENDPOINTS, "s3-express"]))
    assert "unknown endpoint names ['s3-express']" in message and "choose from" in message


def test_missing_essential_endpoint() -> None:
    without_kms = [e for e in DEFAULT_ENDPOINTS if e != "kms"]
    message = _error(_stage(interface_endpoints=without_kms))
    assert "missing ['kms']" in message and "add them back" in message


def test_duplicate_endpoint() -> None:
    assert "listed twice" in _error(_stage(interface_endpoints=[*DEFAULT_ENDPOINTS, "kms"]))


def test_target_among_features() -> None:
    message = _error(_stage(dataset={**DATASET, "numeric": ["bill_length_mm", "sex"]}))
    assert "target column 'sex' is also listed as a feature" in message
    assert "remove it from 'numeric'/'categorical'" in message


@pytest.mark.parametrize(
    ("dataset", "fragment"),
    [
        ({**DATASET, "numeric": [], "categorical": []}, "no feature columns"),
        ({**DATASET, "categorical": ["species", "bill_depth_mm"]}, "both numeric and categorical"),
        ({**DATASET, "id_column": "species"}, "id_column 'species' is also a feature"),
        ({**DATASET, "numeric": ["Bill Length"]}, "must be lower-case letters, digits and '_'"),
        ({**DATASET, "numeric": ["bill_length_mm", "bill_length_mm"]}, "listed twice"),
        ({**DATASET, "positive_class": ""}, "dataset.positive_class"),
    ],
)
def test_inconsistent_dataset_schema(dataset: dict[str, Any], fragment: str) -> None:
    message = _error(_stage(dataset=dataset))
    assert fragment in message and "dataset" in message


def test_unknown_field() -> None:
    message = _error(_stage(vpc_cird="10.0.0.0/16"))
    assert "vpc_cird = '10.0.0.0/16': unknown field; remove it or check its spelling" in message


def test_missing_dataset() -> None:
    assert "dataset: required field is missing; add it" in _error({})


def test_bad_log_retention() -> None:
    message = _error(_stage(log_retention_days=42))
    assert "log_retention_days = 42" in message and "pick one of them" in message


def test_bad_buffering() -> None:
    message = _error(_stage(data={"firehose_buffer_mib": 1000}))
    assert "data.firehose_buffer_mib = 1000" in message and "change it in the stage file" in message


def test_bad_ml_settings() -> None:
    spot = _error(_stage(ml={"training": {"max_runtime_seconds": 7200, "max_wait_seconds": 3600}}))
    assert "max_wait_seconds (3600) is below max_runtime_seconds (7200)" in spot
    split = _error(_stage(ml={"split": {"train": 0.5, "validation": 0.1, "test": 0.1}}))
    assert "the three fractions must add up to 1" in split
    point = _error(_stage(ml={"operating_point": {"kind": "min_sensitivity"}}))
    assert "'min_sensitivity' needs a 'value'" in point
    invalid = _error(_stage(ml={"max_invalid_fraction": 1.5}))
    assert "ml.max_invalid_fraction = 1.5" in invalid
    assert (
        parse_stage("dev", _stage(), source="t.toml").ml.max_invalid_fraction == DEFAULT_MAX_INVALID_FRACTION
    )
    level = _error(_stage(ml={"operating_point": {"kind": "best_f1", "confidence": 0.3}}))
    assert "ml.operating_point.confidence = 0.3" in level and "0.5 is no margin, 0.95 the default" in level


def test_the_gate_confidence_defaults_and_is_the_evaluate_jobs_default() -> None:
    assert OperatingPoint().confidence == DEFAULT_GATE_CONFIDENCE == 0.95
    point = OperatingPoint(kind="min_specificity", value=0.99, confidence=0.9)
    assert point.confidence == 0.9


def test_every_problem_is_reported_at_once() -> None:
    message = _error(_stage(max_azs=1, vpc_cidr="8.8.0.0/16", region="mars"))
    assert all(field in message for field in ("max_azs", "vpc_cidr", "region"))


def test_destroy_flag_without_destroy_policy() -> None:
    message = _error(_stage(data={"removal_policy": "retain"}), destroy_data=True)
    assert "the destroy-data flag was given but data.removal_policy is 'retain'" in message
    assert 'set data.removal_policy = "destroy"' in message


# ---------------------------------------------------------------- the file loader


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_bad_toml(tmp_path: Path) -> None:
    stages = _write(tmp_path, "broken", 'region = "eu-west-1\n')
    with pytest.raises(ConfigError, match=r"broken.*is not valid TOML .*fix the syntax"):
        load_stage("broken", stages_dir=stages)


def test_name_in_the_file(tmp_path: Path) -> None:
    stages = _write(tmp_path, "qa", 'name = "qa"\n')
    with pytest.raises(ConfigError, match="sets 'name'; the file name is the stage name, remove it"):
        load_stage("qa", stages_dir=stages)


def test_a_new_stage_is_just_a_file(tmp_path: Path) -> None:
    text = (STAGES_DIR / "dev.toml").read_text(encoding="utf-8").replace('"10.20.0.0/16"', '"10.40.0.0/16"')
    stage = load_stage("qa", stages_dir=_write(tmp_path, "qa", text))
    assert isinstance(stage, Stage) and stage.vpc_cidr == "10.40.0.0/16" and stage.qualifier == "rookery-qa"


def test_messages_name_the_source_file() -> None:
    message = _error(_stage(max_azs=1))
    assert re.match(r"stage 'dev' \(test\.toml\) is invalid:\n  - max_azs = 1: ", message)


@pytest.mark.parametrize(
    ("check", "fragment"),
    [
        (lambda s: s.stack_name("Data"), "Rookery-dev-Data"),
        (lambda s: s.qualifier, "rookery-dev"),
        (lambda s: s.data.layout.firehose_prefix(s.dataset), "penguins/ingest_date=!{timestamp:yyyy-MM-dd}/"),
    ],
)
def test_derived_names(check: Callable[[Stage], str], fragment: str) -> None:
    assert check(load_stage("dev")) == fragment


def test_a_stage_file_that_is_not_utf8_names_the_file_the_byte_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "latin.toml").write_bytes('region = "eu-west-1"\n# caf\xe9\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as raised:
        load_stage("latin", stages_dir=tmp_path)
    assert str(raised.value) == (
        f"stage 'latin': {tmp_path / 'latin.toml'} is not UTF-8 text (byte 0xe9 on line 2); "
        "save the file as UTF-8"
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(lambda text: text.encode("utf-8", errors="surrogatepass")),
        st.builds(lambda depth: ("x = " + "[" * depth).encode(), st.integers(0, 5000)),
    )
)
def test_any_bytes_as_a_stage_file_load_or_give_a_config_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "fuzz.toml").write_bytes(content)
    try:
        load_stage("fuzz", stages_dir=tmp_path)
    except ConfigError as exc:
        assert "fuzz" in str(exc)


# ---------------------------------------------------------------- training hyperparameters


def _hyperparameters(values: dict[str, Any]) -> dict[str, Any]:
    stage = parse_stage("dev", _stage(ml={"training": {"hyperparameters": values}}), source="test.toml")
    return stage.ml.training.hyperparameters


def test_stage_hyperparameters_are_merged_over_the_defaults() -> None:
    """Following the data report's advice (scale_pos_weight) keeps num_round, early stopping, eta..."""
    merged = _hyperparameters({"scale_pos_weight": 9.5})
    assert merged == {**TRAINING_DEFAULTS, "scale_pos_weight": 9.5}
    assert (
        _hyperparameters({"num_round": 50})["early_stopping_rounds"]
        == TRAINING_DEFAULTS["early_stopping_rounds"]
    )
    assert _hyperparameters({"eta": 0.05})["eta"] == 0.05, "a stage value wins over the default"
    assert (
        Stage.model_validate({"name": "xy", "dataset": DATASET}).ml.training.hyperparameters
        == TRAINING_DEFAULTS
    )


def test_a_misspelt_hyperparameter_fails_at_load_with_the_closest_name() -> None:
    message = _error(_stage(ml={"training": {"hyperparameters": {"num_rounds": 300}}}))
    assert (
        "ml.training.hyperparameters: unknown hyperparameter 'num_rounds' (did you mean 'num_round'?)"
        in message
    )
    assert len(message.splitlines()) == 2, "the file line and one line per problem"


def test_hyperparameter_types_and_ranges_are_checked_at_load_every_problem_at_once() -> None:
    message = _error(
        _stage(ml={"training": {"hyperparameters": {"eta": 1.5, "max_depth": "six", "subsample": True}}})
    )
    assert (
        "hyperparameter 'eta' = 1.5 is out of range; it must be a step size in [0, 1], e.g. eta=0.2"
        in message
    )
    assert "hyperparameter 'max_depth' = 'six' is not a number" in message
    assert "hyperparameter 'subsample' = True is a bool" in message
    unlimited = _error(_stage(ml={"training": {"hyperparameters": {"max_depth": 0}}}))
    assert "needs grow_policy=lossguide" in unlimited


def test_the_image_and_the_stage_validate_with_one_definition() -> None:
    """The image's parser takes whatever the stage accepts (as the strings SageMaker passes)."""
    merged = _hyperparameters({"scale_pos_weight": 9.5, "tree_method": "hist"})
    parsed = parse_hyperparameters({k: str(v) for k, v in merged.items()})
    assert parsed.num_round == 200 and parsed.early_stopping_rounds == 20
    assert parsed.booster_params["scale_pos_weight"] == 9.5


# ---------------------------------------------------------------- N6, R1, Control Tower's log retention


_PROD: dict[str, Any] = {
    "production": True,
    "account": "123456789012",
    "termination_protection": True,
    "log_retention_days": 365,
    "serving": {
        "min_instances": 2,
        "initial_instance_count": 2,
        "max_instances": 3,
        "instance_type": "ml.m5.large",
    },
}


def test_jupyter_opens_by_default_only_through_the_stages_own_endpoints() -> None:
    notebook = parse_stage("dev", _stage(), source="test.toml").notebook
    assert (notebook.open_from_vpc_endpoints, notebook.open_from_cidrs) == (("sagemaker.api", "notebook"), ())
    chosen = parse_stage(
        "dev",
        _stage(
            notebook={
                "open_from_vpc_endpoints": ["vpce-0123456789abcdef0"],
                "open_from_cidrs": ["203.0.113.0/24"],
            }
        ),
        source="test.toml",
    ).notebook
    assert chosen.open_from_vpc_endpoints == ("vpce-0123456789abcdef0",)
    assert chosen.open_from_cidrs == ("203.0.113.0/24",)
    # No notebook, no source needed.
    assert (
        parse_stage(
            "dev", _stage(notebook={"enabled": False, "open_from_vpc_endpoints": []}), source="test.toml"
        ).notebook.open_from_vpc_endpoints
        == ()
    )


@pytest.mark.parametrize(
    ("notebook", "fragment"),
    [
        ({"open_from_vpc_endpoints": []}, "nothing says where Jupyter may be opened from (control N6"),
        ({"open_from_vpc_endpoints": ["sagemaker"]}, "are neither interface endpoint names"),
        ({"open_from_vpc_endpoints": ["vpce-XYZ"]}, "nor VPC endpoint ids"),
        ({"open_from_vpc_endpoints": ["notebook", "notebook"]}, "an endpoint is listed twice"),
        (
            {"open_from_vpc_endpoints": ["athena"]},
            "names ['athena'], which interface_endpoints does not create",
        ),
        ({"open_from_cidrs": ["0.0.0.0/0"]}, "is every address: Jupyter would open from anywhere"),
        ({"open_from_cidrs": ["::/0"]}, "is every address"),
        ({"open_from_cidrs": ["203.0.113.7/24"]}, "is not an address range"),
        ({"open_from_cidrs": ["office"]}, "is not an address range"),
    ],
)
def test_where_jupyter_opens_from_is_validated(notebook: dict[str, Any], fragment: str) -> None:
    assert fragment in _error(_stage(notebook=notebook))


def test_a_production_stage_requires_manual_approval() -> None:
    parse_stage("prod", _stage(**_PROD), source="test.toml")
    for status in ("Approved", "Rejected"):
        message = _error(_stage(**_PROD, ml={"approval_status": status}), name="prod")
        assert 'set ml.approval_status = "PendingManualApproval"' in message, message
    # A development stage may skip it; the audit (R1) then fails unless acknowledged with a reason.
    ml = parse_stage("dev", _stage(ml={"approval_status": "Approved"}), source="test.toml").ml
    assert (ml.requires_approval, ml.registration_statuses) == (
        False,
        ("PendingManualApproval", "Approved", "Rejected"),
    )
    assert load_stage("dev").ml.registration_statuses == ("PendingManualApproval",)


def test_a_production_stage_keeps_logs_a_year() -> None:
    message = _error(_stage(**{**_PROD, "log_retention_days": 90}), name="prod")
    assert "keeps its logs at least 365 days (it says log_retention_days = 90)" in message
