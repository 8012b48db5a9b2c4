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
    from constructs_lib.job_placement import StackPlacement, stack_id
    from jobs import JOB_GROUPS, PLACEMENT_FILE
    from stacks.platform_app import build_app, synth

    placement = StackPlacement.load(PLACEMENT_FILE)
    app, stages = build_app(ENVIRONMENTS, JOB_GROUPS, placement=placement)
    synth(app, stages)
    # Only a synth that was accepted records where its new jobs live.
    if placement.save(PLACEMENT_FILE):
        for group, job, number in placement.placed:
            print(f"job {job!r}: placed in stack {stack_id(group, number)}", file=sys.stderr)
        print(f"recorded in jobs/{PLACEMENT_FILE.name}: commit it", file=sys.stderr)
except DeclarationError as error:
    sys.exit(f"error: {error}")
