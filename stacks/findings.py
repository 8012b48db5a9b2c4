"""cdk-nag findings as a user reads them: one line per finding, and how to accept one.

CDK writes the packs' findings to ``validation-report.json``. Run by the CDK CLI, the app
does not fail on them by itself (the CLI enforces validation only for the stacks it is
asked for, and every stack here sits in a stage), so ``synth`` reads the report and
refuses the assembly itself, the same way under the CLI and in Python.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ml_platform.contract import DeclarationError

#: "AwsSolutions-IAM5[Action::s3:GetBucket*]" -> pack, rule, evidence kind, evidence.
_RULE = re.compile(r"^(?P<pack>.+?)-(?P<rule>[A-Za-z0-9]+)(\[(?P<kind>\w+)::(?P<value>.*)\])?$")
_KWARG = {"Action": "action", "Resource": "resource", "Policy": "policy"}


class NagFindings(DeclarationError):
    """Unacknowledged cdk-nag findings; the message lists each one and how to accept it."""


def failed(report: dict[str, Any]) -> bool:
    return any(p.get("conclusion") == "failure" for p in report.get("pluginReports", []))


def acknowledgement_hint(rule_name: str) -> str:
    """The ``acknowledge(...)`` call that would accept this finding."""
    match = _RULE.match(rule_name)
    if match is None:
        return f'acknowledge(<construct>, "{rule_name}", reason="...")'
    pack = "" if match["pack"] == "AwsSolutions" else ", pack=NIST"
    evidence = ""
    if match["kind"]:
        evidence = f', {_KWARG.get(match["kind"], match["kind"].lower())}="{match["value"]}"'
    reason = 'reason="why it is acceptable here"'
    return f'acknowledge(<construct>, "{match["rule"]}"{evidence}, {reason}{pack})'


def describe(report: dict[str, Any], where: Path) -> str:
    lines = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            paths = [c.get("constructPath", "?") for c in violation.get("violatingConstructs", [])]
            more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
            lines.append(
                f"  - {violation['ruleName']} on {paths[0] if paths else '?'}{more}: "
                f"{violation.get('description', '').strip()}\n"
                f"      to accept it: {acknowledgement_hint(violation['ruleName'])}"
            )
    return (
        f"cdk-nag refused the synth: {len(lines)} unacknowledged finding(s); full report: "
        f"{where}\n" + "\n".join(lines) + "\n"
        "Narrow the grant (MlJob.grant_read_objects / grant_write_objects), or acknowledge "
        "the finding beside the statement that causes it, on the narrowest construct, with "
        "why it is acceptable (constructs_lib/acknowledgements.py)."
    )


def raise_on_findings(report_path: Path, shown_as: Path) -> None:
    """Raise ``NagFindings`` when the report at ``report_path`` has any finding."""
    if not report_path.is_file():
        return
    report = json.loads(report_path.read_text())
    if failed(report):
        raise NagFindings(describe(report, shown_as))
