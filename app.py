#!/usr/bin/env python3
"""CDK entry point (``cdk.json``): ``cdk synth -c stage=NAME [-c destroy_data=true]``."""

from stage.toolchain import use_venv_node

use_venv_node()  # before aws_cdk is imported: jsii must start the venv's Node

from infra.app import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
