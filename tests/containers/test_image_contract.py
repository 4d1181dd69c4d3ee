"""The /opt/ml contract module, the dataset schema and the hyperparameters: pure logic, in process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from image_helpers import PROGRAM

from rookery_contracts.metrics import METRIC_DEFINITIONS
from rookery_image import contract, hyperparameters, training
from rookery_image.contract import UserError
from stage import TrainingSettings, available_stages, load_stage


def test_the_base_folder_is_one_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAGEMAKER_BASE_DIR", raising=False)
    assert contract.paths().model == Path("/opt/ml/model")
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    p = contract.paths()
    assert p.hyperparameters == tmp_path / "input" / "config" / "hyperparameters.json"
    assert p.channel("train") == tmp_path / "input" / "data" / "train"
    assert p.checkpoints == tmp_path / "checkpoints"
    assert p.failure == tmp_path / "output" / "failure"
    assert p.processing_input("raw") == tmp_path / "processing" / "input" / "raw"
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/data/train")
    monkeypatch.setenv("SM_MODEL_DIR", "/models/here")
    assert contract.paths().channel("train") == Path("/data/train")
    assert contract.paths().model == Path("/models/here")


def test_only_the_contract_module_knows_opt_ml() -> None:
    mentions = [
        path.relative_to(PROGRAM).as_posix()
        for path in sorted(PROGRAM.rglob("*"))
        if path.is_file() and path.suffix in ("", ".py") and "/opt/ml" in path.read_text(encoding="utf-8")
    ]
    assert mentions == ["rookery_image/contract.py"]


def test_hyperparameters_file(tmp_path: Path) -> None:
    where = contract.Paths(tmp_path)
    assert contract.read_hyperparameters(where) == {}
    where.input_config.mkdir(parents=True)
    where.hyperparameters.write_text(json.dumps({"num_round": "10", "eta": 0.1, "max_depth": 3}))
    assert contract.read_hyperparameters(where) == {"num_round": "10", "eta": "0.1", "max_depth": "3"}
    where.hyperparameters.write_text("{num_round: 10}")
    with pytest.raises(UserError, match=r"hyperparameters.json .* is not valid JSON"):
        contract.read_hyperparameters(where)


def _declare(where: contract.Paths, **channels: dict[str, str]) -> None:
    where.input_config.mkdir(parents=True, exist_ok=True)
    where.inputdataconfig.write_text(json.dumps(channels))


def test_channels_are_checked_against_inputdataconfig(tmp_path: Path) -> None:
    where = contract.Paths(tmp_path)
    _declare(where, train={"ContentType": "text/csv", "TrainingInputMode": "File"})
    where.channel("train").mkdir(parents=True)
    assert contract.channel_dir("train", required=True, purpose="rows", where=where) == where.channel("train")
    assert contract.channel_dir("validation", required=False, purpose="rows", where=where) is None
    with pytest.raises(
        UserError, match=r"missing channel 'validation' \(rows\); the job has channels \['train'\]"
    ):
        contract.channel_dir("validation", required=True, purpose="rows", where=where)
    _declare(where, train={"ContentType": "text/csv", "TrainingInputMode": "Pipe"})
    with pytest.raises(UserError, match="set the input mode to 'File'"):
        contract.channel_dir("train", required=True, purpose="rows", where=where)
    _declare(where, train={"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "File"})
    with pytest.raises(UserError, match="set ContentType to 'text/csv'"):
        contract.channel_dir("train", required=True, purpose="rows", where=where)


def test_a_host_missing_from_its_own_resource_config_is_refused(tmp_path: Path) -> None:
    """Several hosts train together (tests/containers/test_image_hosts.py); a config naming a current
    host outside its hosts is refused before anything waits for peers."""
    where = contract.Paths(tmp_path)
    where.input_config.mkdir(parents=True)
    where.resourceconfig.write_text(json.dumps({"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]}))
    with pytest.raises(UserError, match="current_host 'algo-3' is not among hosts"):
        training.train(where, training.StopFlag())


def test_run_job_tells_user_errors_from_algorithm_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    failure = tmp_path / "output" / "failure"

    def user() -> None:
        raise UserError("channel 'train' is empty; add data")

    def bug() -> None:
        raise KeyError("feature_names")

    def interrupted() -> None:
        raise contract.Interrupted("stopped by SIGTERM")

    assert contract.run_job("train", user) == 1
    assert failure.read_text() == "UserError: channel 'train' is empty; add data\n"
    assert contract.run_job("train", bug) == 2
    assert failure.read_text().startswith(
        "AlgorithmError: train failed inside rookery's image (KeyError: 'feature_names')"
    )
    failure.unlink()
    assert contract.run_job("train", interrupted) == 143
    assert not failure.exists()
    assert contract.run_job("train", lambda: None) == 0


def test_serving_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = contract.ServingSettings.from_env({})
    assert (settings.host, settings.port, settings.timeout_seconds) == ("0.0.0.0", 8080, 60)
    assert settings.workers == contract.usable_cpus() and settings.decision_threshold is None
    settings = contract.ServingSettings.from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "ROOKERY_DECISION_THRESHOLD": "0.27",
        }
    )
    assert (settings.port, settings.workers, settings.decision_threshold) == (9000, 3, 0.27)
    for env, message in [
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT='http' is not a whole number"),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS=0 is outside 1..64"),
        ({"ROOKERY_DECISION_THRESHOLD": "1.5"}, "is not a probability between 0 and 1"),
        ({"ROOKERY_DECISION_THRESHOLD": "high"}, "is not a probability between 0 and 1"),
        ({"ROOKERY_UNKNOWN_CATEGORY": "guess"}, "'guess' is not a policy"),
    ]:
        with pytest.raises(UserError, match=re.escape(message)):
            contract.ServingSettings.from_env(env)


def test_the_training_log_line_is_what_the_metric_definitions_parse() -> None:
    line = training.metric_line(
        "7", {"train-auc": 0.98765432, "validation-auc": 0.9, "validation-logloss": 1e-7}
    )
    assert line == "[7] train-auc:0.987654 validation-auc:0.900000 validation-logloss:0.000000"
    found = {d["Name"]: re.search(d["Regex"], line) for d in METRIC_DEFINITIONS}
    assert found["train:auc"] and found["train:auc"].group(1) == "0.987654"
    assert found["validation:auc"] and found["validation:auc"].group(1) == "0.900000"
    assert found["validation:aucpr"] is None, "auc must not match aucpr"


# --- dataset schema (its rules: tests/contracts/test_contracts_schema.py) ------------------------

GOOD_SCHEMA = {"name": "penguins", "target": "sex", "positive_class": "female",
               "numeric": ["body_mass_g"], "categorical": ["island"], "id_column": None,
               "group_column": None}  # fmt: skip


def test_the_job_reads_the_schema_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOKERY_DATASET_SCHEMA", json.dumps(GOOD_SCHEMA))
    parsed = contract.dataset_schema()
    assert parsed.features == ("body_mass_g", "island") and parsed.to_dict() == GOOD_SCHEMA
    for stage in available_stages():
        dumped = load_stage(stage).dataset.to_json()
        monkeypatch.setenv("ROOKERY_DATASET_SCHEMA", dumped)
        assert contract.dataset_schema().to_dict() == json.loads(dumped)


def test_a_bad_schema_is_a_user_error_naming_the_variable_and_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROOKERY_DATASET_SCHEMA", raising=False)
    with pytest.raises(UserError, match="ROOKERY_DATASET_SCHEMA is not set; set it to the dataset schema"):
        contract.dataset_schema()
    monkeypatch.setenv("ROOKERY_DATASET_SCHEMA", json.dumps({**GOOD_SCHEMA, "categorical": ["body_mass_g"]}))
    with pytest.raises(
        UserError, match=re.escape("ROOKERY_DATASET_SCHEMA: columns ['body_mass_g'] are both numeric and")
    ):
        contract.dataset_schema()
    monkeypatch.setenv("ROOKERY_DATASET_SCHEMA", "name=penguins")
    with pytest.raises(UserError, match="ROOKERY_DATASET_SCHEMA: not valid JSON"):
        contract.dataset_schema()


# --- hyperparameters ----------------------------------------------------------------------------


def test_hyperparameters_become_typed_settings() -> None:
    hp = hyperparameters.parse(
        {"num_round": "200", "max_depth": "5", "eta": "0.2", "eval_metric": "logloss,auc",
         "early_stopping_rounds": "20", "subsample": "0.8", "_tuning_objective_metric": "validation:auc"}
    )  # fmt: skip
    assert hp.num_round == 200 and hp.early_stopping_rounds == 20 and hp.checkpoint_frequency == 10
    assert hp.eval_metrics == ("logloss", "auc") and hp.stopping_metric == "auc"
    assert hp.booster_params == {"objective": "binary:logistic", "max_depth": 5, "eta": 0.2, "subsample": 0.8}
    assert "_tuning_objective_metric" not in hp.given, "SageMaker's own entries are not hyperparameters"


def test_the_stage_config_defaults_are_accepted() -> None:
    given = {k: str(v) for k, v in TrainingSettings().hyperparameters.items()}
    assert hyperparameters.parse(given).num_round == 200


def test_fingerprint_ignores_the_checkpoint_rhythm() -> None:
    a = hyperparameters.parse({"num_round": "10", "checkpoint_frequency": "2"})
    b = hyperparameters.parse({"num_round": "10", "checkpoint_frequency": "5"})
    c = hyperparameters.parse({"num_round": "11"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_unlimited_depth_needs_lossguide() -> None:
    with pytest.raises(UserError, match="needs grow_policy=lossguide"):
        hyperparameters.parse({"num_round": "10", "max_depth": "0"})
    assert hyperparameters.parse({"num_round": "10", "max_depth": "0", "grow_policy": "lossguide"})
