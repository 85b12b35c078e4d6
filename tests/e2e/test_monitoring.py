"""The shipped Prometheus rules and Grafana dashboard name only real metrics.

Every metric the alert rules (deploy/prometheus/alerts.yml) and the dashboard
(deploy/grafana/dashboards/) query is in the ``/metrics`` of a running API
(gunicorn, several workers) or push worker, whichever job the query names;
and ``promtool`` accepts the rules and the Prometheus configuration.
"""

import json
import re
import shutil
import subprocess

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.live import ROOT
from tests.support.live import make_key

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))

#: Series Prometheus makes itself for each scrape target, not in any /metrics.
SYNTHETIC = {"up"}
#: Words of PromQL that look like metric names: operators and modifiers.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "inf", "nan",
}  # fmt: skip
#: Sample names of each metric type, from the family name the parser gives.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is missing (Debian package prometheus; make test installs it)",
)


def expressions() -> list:
    """(where, PromQL) of every alert rule and dashboard query."""
    found = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            found.append((f"alert {rule['alert']}", rule["expr"]))
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", ()):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
    return found


def selectors(expr: str) -> list:
    """(metric name, the job its matchers name or None) of each selector."""
    expr = re.sub(r"\$__\w+", "5m", expr)  # Grafana's interval variables
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range durations
    # Grouping clauses list label names, not metrics.
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr
    )
    found = []
    # The matchers are taken whole with their name: label names and values
    # inside them are not read as metrics.
    for match in re.finditer(r"([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?", expr):
        name, matchers, call = match.groups()
        if call or name.lower() in KEYWORDS:
            continue  # a function, or an operator
        job = re.search(r'\bjob\s*=\s*"(\w+)"', matchers or "")
        found.append((name, job.group(1) if job else None))
    return found


def sample_names(text: str) -> set:
    """Every series name an exposition can give, by its families' types."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def scrape(url: str, key: str) -> str:
    answer = requests.get(
        url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_expression_reader_finds_metrics_and_their_job():
    expr = (
        "histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_"
        'seconds_bucket{job="api",route=~"/notes.*"}[$__rate_interval]))) > 1 and '
        "on (route) up == 0 unless max without (pid) (process_open_fds)"
    )
    assert selectors(expr) == [
        ("http_request_duration_seconds_bucket", "api"),
        ("up", None),
        ("process_open_fds", None),
    ]


def test_every_metric_of_the_rules_and_the_dashboard_is_served(
    live_server, push_worker, make_cluster, tmp_path
):
    # A broker with no worker: /collatz answers 503, which store_errors_total
    # counts (in multiprocess mode a counter is served once counted).
    cluster = make_cluster()
    cluster.start_broker()
    key = make_key(tmp_path, "admin")
    env = {"AUTH": "on", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    env.update(cluster.env, COLLATZ_TIMEOUT="2")
    server = live_server(env=env, workers=2)
    worker = push_worker(env={"AUTH": "on"})
    auth = {"Authorization": f"Bearer {key}"}
    created = requests.post(
        server.url + "/notes", json={"title": "watched"}, headers=auth, timeout=10
    )
    assert created.status_code == 201
    unavailable = requests.get(server.url + "/collatz?n=10", headers=auth, timeout=10)
    assert unavailable.status_code == 503
    worker.wait_head(1)
    served = {"push": sample_names(scrape(worker.sse_url, key))}
    # Stopped, the worker saves its checkpoint: the API then reports its lag.
    worker.stop()
    served["api"] = sample_names(scrape(server.url, key))

    everywhere = served["api"] | served["push"] | SYNTHETIC
    missing = []
    queries = expressions()
    assert len(queries) > 20  # the rules and every panel were read
    for where, expr in queries:
        for name, job in selectors(expr):
            known = everywhere if job is None or name in SYNTHETIC else served[job]
            if name not in known:
                missing.append(f"{where}: {name} (job {job})")
    assert missing == []


@needs_promtool
def test_promtool_accepts_the_rules_and_the_configuration():
    rules = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = subprocess.run(
        [PROMTOOL, "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
    )
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_promtool_refuses_a_broken_rule(tmp_path):
    """The check above can fail: a rule with a syntax error is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        RULES.read_text().replace("expr: up{job", "expr: up{{job", 1), "utf-8"
    )
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(broken)], capture_output=True, text=True
    )
    assert result.returncode != 0
