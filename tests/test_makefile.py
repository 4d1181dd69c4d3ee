"""`make test` alone must pass on a fresh machine: it installs the browser the report's test drives,
or says in one line how to. Run against stand-ins for `id` and `apt-get` on a PATH without chromium,
so nothing is installed on this machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _fake_path(tmp_path: Path, *, uid: int) -> tuple[dict[str, str], Path]:
    """An environment whose PATH holds bash, `id` answering ``uid`` and an `apt-get` that records its
    arguments and, on install, puts a `chromium` on that PATH, as Debian's package does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-get.calls"
    for tool in ("bash", "make"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed to run the Makefile"
        (bin_dir / tool).symlink_to(found)
    bash, chmod = shutil.which("bash"), shutil.which("chmod")
    chromium = bin_dir / "chromium"
    scripts = {
        "id": f"#!{bash}\necho {uid}\n",
        "apt-get": (
            f"#!{bash}\n"
            f'echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> {calls}\n'
            'if [ "$1" = install ]; then\n'
            f"  printf '#!{bash}\\n' > {chromium}; {chmod} +x {chromium}\n"
            "fi\n"
        ),
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}, calls


def _make_browser(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(env["PATH"]) / "make"), "-s", "-C", str(REPO), "browser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_test_installs_the_browser_first() -> None:
    listed = subprocess.run(
        ["make", "-s", "-C", str(REPO), "-p", "-n", "help"], capture_output=True, text=True, check=True
    ).stdout
    rule = next(line for line in listed.splitlines() if line.startswith("test:"))
    assert "browser" in rule.split(":", 1)[1].split()


def test_as_root_a_missing_chromium_is_installed_with_apt(tmp_path: Path) -> None:
    env, calls = _fake_path(tmp_path, uid=0)
    result = _make_browser(env)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert lines[0].endswith("update -qq")
    assert lines[1] == "DEBIAN_FRONTEND=noninteractive install -y -qq --no-install-recommends chromium"
    assert (tmp_path / "bin" / "chromium").is_file()


def test_an_installed_chromium_is_left_alone(tmp_path: Path) -> None:
    env, calls = _fake_path(tmp_path, uid=0)
    (tmp_path / "bin" / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "chromium").chmod(0o755)
    result = _make_browser(env)
    assert result.returncode == 0, result.stderr
    assert not calls.exists()


def test_without_root_make_says_the_command_in_one_line_and_fails(tmp_path: Path) -> None:
    env, calls = _fake_path(tmp_path, uid=1000)
    result = _make_browser(env)
    assert result.returncode != 0
    assert not calls.exists()
    message = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(message) == 1, result.stderr
    assert "`sudo apt-get install -y --no-install-recommends chromium`" in message[0]


def test_ci_runs_exactly_make_test() -> None:
    commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "make test"]
