#!/usr/bin/env python3
"""CDK entry point: every environment in config/, every job group in jobs/."""

from config import ENVIRONMENTS
from jobs import JOB_GROUPS
from stacks.platform_app import build_app, synth

app, stages = build_app(ENVIRONMENTS, JOB_GROUPS)
synth(app, stages)
