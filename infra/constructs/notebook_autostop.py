"""Idle auto-stop for the notebook instance (control N5), started by its lifecycle configuration.

A standalone program in the standard library only, and valid Python 3.9 (the notebook platform's
``/usr/bin/python3``): the notebook has no internet, so nothing is installed or downloaded.
Every few minutes it asks Jupyter on localhost which kernels and terminals exist and when each
was last active. Once none is busy and nothing was active for ``--idle-minutes``, it stops the
instance with the AWS CLI, which reaches SageMaker through the VPC's ``sagemaker.api`` endpoint.
The ML stack embeds this file in the lifecycle configuration; the tests run it against a local
Jupyter stand-in and a recording ``aws``.
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

METADATA = "/opt/ml/metadata/resource-metadata.json"  # written by SageMaker on every notebook instance
JUPYTER = "https://localhost:8443"
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


def parse_time(text: str) -> datetime:
    """Jupyter's ISO timestamps (``...Z``); ``fromisoformat`` of Python 3.9 does not read the ``Z``."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def idle_minutes(
    now: datetime, kernels: list[dict[str, Any]], terminals: list[dict[str, Any]], started: datetime
) -> float | None:
    """Minutes since anything was last active (never before ``started``); None while a kernel is busy."""
    if any(kernel.get("execution_state") == "busy" for kernel in kernels):
        return None
    stamps = [parse_time(item["last_activity"]) for item in kernels + terminals if item.get("last_activity")]
    return (now - max([started, *stamps])).total_seconds() / 60


def boot_time() -> datetime:
    """When this machine started (Jupyter starts with it): idle time is never counted from earlier."""
    with open("/proc/uptime", encoding="ascii") as handle:
        uptime = float(handle.read().split()[0])
    return datetime.now(timezone.utc) - timedelta(seconds=uptime)  # noqa: UP017 (Python 3.9)


def get_json(base: str, path: str) -> Any:
    """GET a Jupyter API path on this machine (its TLS certificate is self-signed for localhost)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(base.rstrip("/") + path, timeout=10, context=context) as response:
        return json.loads(response.read().decode("utf-8"))


def notebook_identity(metadata_path: str) -> tuple[str, str]:
    """(name, region) of this notebook instance from SageMaker's resource metadata."""
    with open(metadata_path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    name = metadata["ResourceName"]
    region = metadata["ResourceArn"].split(":")[3]
    return name, region


def stop_instance(aws_cli: str, name: str, region: str) -> int:
    command = [aws_cli, "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name]
    return subprocess.run([*command, "--region", region], check=False).returncode


def check_once(args: argparse.Namespace, started: datetime) -> bool:
    """One look at Jupyter; stop the instance and return True when it has been idle long enough."""
    try:
        kernels = get_json(args.jupyter_url, "/api/kernels")
        terminals = get_json(args.jupyter_url, "/api/terminals")
    except (OSError, ValueError) as exc:
        print(f"autostop: Jupyter at {args.jupyter_url} did not answer ({exc}); will look again", flush=True)
        return False
    idle = idle_minutes(datetime.now(timezone.utc), kernels, terminals, started)  # noqa: UP017 (Python 3.9)
    if idle is None or idle < args.idle_minutes:
        limit = args.idle_minutes
        state = "a kernel is busy" if idle is None else f"idle for {idle:.0f} of {limit:g} minutes"
        print(f"autostop: {state}", flush=True)
        return False
    name, region = notebook_identity(args.metadata)
    print(f"autostop: idle for {idle:.0f} minutes; stopping {name} in {region}", flush=True)
    code = stop_instance(args.aws_cli, name, region)
    if code != 0:
        print(f"autostop: stop-notebook-instance exited {code}; will try again", flush=True)
    return code == 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-minutes", type=float, required=True)
    parser.add_argument("--interval-seconds", type=float, default=300)
    parser.add_argument("--once", action="store_true", help="look once and exit (for tests)")
    parser.add_argument("--jupyter-url", default=JUPYTER)
    parser.add_argument("--metadata", default=METADATA)
    parser.add_argument("--aws-cli", default="aws")
    parser.add_argument(
        "--since",
        type=parse_time,
        default=None,
        help="count idle time from no earlier than this (default: boot)",
    )
    args = parser.parse_args(argv)
    if args.idle_minutes <= 0:
        parser.error("--idle-minutes must be positive")
    if urllib.parse.urlsplit(args.jupyter_url).hostname not in _LOCAL_HOSTS:
        parser.error("--jupyter-url must point at this machine (localhost or 127.0.0.1)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = args.since or boot_time()
    while not check_once(args, started) and not args.once:
        time.sleep(args.interval_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
