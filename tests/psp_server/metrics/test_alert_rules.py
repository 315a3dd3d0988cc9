"""deploy/psp/alerts.yml, the alerting rules shipped for the PSP: promtool
(Debian's prometheus package) accepts them, each fires on made-up series
that break it and not before its ``for`` (alert_rules_test.yml), and every
metric they name is one the PSP serves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "psp" / "alerts.yml"
UNIT_TESTS = Path(__file__).with_name("alert_rules_test.yml")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed; it comes with Prometheus. Install it with "
            "`sudo apt-get install prometheus` (scripts/ensure-system-deps does this "
            "when run as root).",
            pytrace=False,
        )
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_every_rule_fires_when_broken_and_not_before() -> None:
    tested = promtool("test", "rules", str(UNIT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    rules = set(re.findall(r"alert: (\w+)", RULES.read_text(encoding="utf-8")))
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- ", UNIT_TESTS.read_text()))
    assert fired == rules  # no rule goes untested


def test_the_rules_name_only_metrics_the_psp_serves() -> None:
    from prometheus_client import CollectorRegistry

    from psp_server.metrics import PrometheusMetrics

    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    served = {family.name for family in registry.collect()} | {
        "scan2pay_outbox_pending",
        "scan2pay_outbox_oldest_pending_age_seconds",
        "scan2pay_webhook_pending",
    }
    named = set(re.findall(r"scan2pay_[a-z_]+", RULES.read_text(encoding="utf-8")))
    suffixes = ("_total", "_bucket", "_sum", "_count")
    bare = {next((n.removesuffix(s) for s in suffixes if n.endswith(s)), n) for n in named}
    assert bare <= served, bare - served
