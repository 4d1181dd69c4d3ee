"""Several instances per training job: who gets which objects, where each host works, whose reason wins."""

from __future__ import annotations

from pathlib import Path

from emulators.sagemaker.steps import hosts


def test_sharded_by_s3_key_gives_each_host_every_nth_object_in_key_order(tmp_path: Path) -> None:
    keys = ["b/2.csv", "a.csv", "b/1.csv", "c.csv", "d.csv"]
    shares = []
    for index in range(2):
        folder = tmp_path / f"host{index}"
        for key in keys:
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / key).write_text(key)
        assert hosts.keep_share(folder, index, 2) == (3 if index == 0 else 2)
        shares.append(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.csv")))
    assert shares == [["a.csv", "b/2.csv", "d.csv"], ["b/1.csv", "c.csv"]]


def test_hosts_have_sandboxes_and_logs_of_their_own(tmp_path: Path) -> None:
    assert hosts.host_names(3) == ["algo-1", "algo-2", "algo-3"]
    assert hosts.host_dirs(tmp_path / "Train", 3) == [
        tmp_path / "Train",
        tmp_path / "Train.algo-2",
        tmp_path / "Train.algo-3",
    ]
    assert hosts.host_log_path(tmp_path / "Train.log", "algo-2") == tmp_path / "Train.algo-2.log"
    env = hosts.collective_env()
    assert env["ROOKERY_COLLECTIVE_HOST"] == "127.0.0.1" and env["ROOKERY_COLLECTIVE_PORT"].isdigit()


def test_the_job_fails_with_the_reason_of_the_host_that_failed_first_hand() -> None:
    names = ["algo-1", "algo-2", "algo-3"]
    reasons = [
        "UserError: host algo-2 failed: UserError: channel 'train' file x.csv is not numeric CSV",
        "UserError: channel 'train' file x.csv is not numeric CSV",
        "UserError: host algo-2 failed: UserError: channel 'train' file x.csv is not numeric CSV",
    ]
    assert hosts.failure_reason(names, reasons) == (
        "UserError: channel 'train' file x.csv is not numeric CSV (host algo-2)"
    )
    lost = ["UserError: host algo-1 lost contact with its peers", "", ""]
    assert (
        hosts.failure_reason(names, lost)
        == "UserError: host algo-1 lost contact with its peers (host algo-1)"
    )
    assert hosts.failure_reason(names, ["", "", ""]) == ""
