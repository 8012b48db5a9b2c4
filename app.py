#!/usr/bin/env python3
"""CDK entry point: every environment in config/, every job group in jobs/.

A mistake in a declaration (an environment, a job, a cdk-nag finding) prints one line per
problem, naming where, the field and what is allowed, and exits 1 without a traceback.
"""

import os
import sys

# jsii prints Node 20's end-of-life banner on every start (as Python bytes, under the CLI).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from ml_platform.contract import DeclarationError

try:
    from config import ENVIRONMENTS
    from jobs import JOB_GROUPS
    from stacks.platform_app import build_app, synth

    app, stages = build_app(ENVIRONMENTS, JOB_GROUPS)
    synth(app, stages)
except DeclarationError as error:
    sys.exit(f"error: {error}")
