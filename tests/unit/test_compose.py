"""docker-compose.yml's cluster profile: the layout ``make test-cluster`` runs.

No Docker engine runs here: ``make lint`` checks the file against the Compose
schema, and this reads it (YAML merge keys resolved) to check what the
schema cannot: the profile adds the parts the cluster needs to the default
services, the load balancer sends to every API node, and every setting the
app services get is one core/settings.py reads.
"""

import dataclasses
import ipaddress
import re

import pytest

from core.settings import Settings
from tests.support.processes import ROOT

yaml = pytest.importorskip("yaml")

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
HAPROXY = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
SETTINGS = {field.metadata["env"] for field in dataclasses.fields(Settings)}
#: Read by a library, not by core/settings.py: the OpenTelemetry exporter.
LIBRARY_SETTINGS = {"OTEL_EXPORTER_OTLP_ENDPOINT"}


def in_cluster(name: str) -> bool:
    """Whether ``docker compose --profile cluster up`` starts the service."""
    profiles = SERVICES[name].get("profiles")
    return not profiles or "cluster" in profiles


def running(command: str) -> list:
    """The cluster's services whose command runs ``python -m <command>``."""
    found = []
    for name, service in SERVICES.items():
        argv = service.get("command") or []
        if in_cluster(name) and argv[:3] == ["python", "-m", command]:
            found.append(name)
    return sorted(found)


def test_the_cluster_profile_has_every_part_of_the_layout():
    api_nodes = sorted(
        name for name in SERVICES if in_cluster(name) and name.startswith("api")
    )
    assert api_nodes == ["api", "api-2", "api-3"]
    # The first node runs the image's command (migrations, then gunicorn).
    assert "command" not in SERVICES["api"]
    assert running("api") == ["api-2", "api-3"]
    assert running("workers.push") == ["push", "push-2"]
    assert running("workers.webhooks.runner") == ["webhooks", "webhooks-2"]
    assert running("workers.collatz.broker") == ["collatz-broker"]
    assert running("workers.collatz.worker") == ["collatz-worker", "collatz-worker-2"]
    rethinkdb = sorted(
        name
        for name, service in SERVICES.items()
        if in_cluster(name) and service.get("image", "").startswith("rethinkdb:")
    )
    assert rethinkdb == ["rethinkdb", "rethinkdb-2", "rethinkdb-3"]
    for peer in rethinkdb[1:]:
        command = SERVICES[peer]["command"]
        assert command[command.index("--join") + 1] == "rethinkdb:29015"
        assert "auto" in command  # --initial-password: joins a protected cluster
        assert SERVICES[peer]["volumes"] == [f"{peer}:/data"]
    assert in_cluster("postgres") and in_cluster("lb")


def test_the_profile_adds_to_the_default_services_and_nothing_else_starts_them():
    added = {n for n, s in SERVICES.items() if "cluster" in s.get("profiles", ())}
    assert added == {
        "lb",
        "api-2",
        "api-3",
        "rethinkdb-2",
        "rethinkdb-3",
        "push-2",
        "webhooks-2",
        "collatz-worker-2",
    }
    for name in added:
        assert SERVICES[name]["profiles"] == ["cluster"]


def test_the_load_balancer_sends_to_every_api_node_and_checks_their_health():
    servers = re.findall(r"^\s*server \S+ (\S+):8000$", HAPROXY, re.MULTILINE)
    assert servers == ["api", "api-2", "api-3"]
    assert "uri /health" in HAPROXY
    assert set(SERVICES["lb"]["depends_on"]) == {"api", "api-2", "api-3"}
    # The health check's Host is one the nodes answer.
    host = re.search(r"hdr Host (\S+)", HAPROXY).group(1)
    allowed = SERVICES["api-2"]["environment"]["ALLOWED_HOSTS"].split(",")
    assert host in allowed


def test_every_app_service_setting_is_a_setting_of_core_settings():
    for name, service in SERVICES.items():
        if service.get("image") != "falcon-pypy-api:latest":
            continue
        unknown = set(service.get("environment", {})) - SETTINGS - LIBRARY_SETTINGS
        assert not unknown, (name, unknown)


def test_the_cluster_settings_reach_every_app_service():
    for name in ("api", "api-2", "api-3", "push-2", "webhooks-2"):
        env = SERVICES[name]["environment"]
        assert "${RETHINKDB_HOSTS:-rethinkdb:28015}" in env["RETHINKDB_URL"]
        assert env["RETHINKDB_REPLICAS"] == "${RETHINKDB_REPLICAS:-1}"
        assert env["DATABASE_URL"].startswith("postgresql://")


def test_the_api_nodes_trust_the_balancers_address_and_no_other():
    assert re.search(r"^\s*option forwardfor$", HAPROXY, re.MULTILINE)
    assert "if-none" not in HAPROXY  # would pass a client's header on as is
    lb_networks = SERVICES["lb"]["networks"]
    assert list(lb_networks) == ["balancer"]
    address = lb_networks["balancer"]["ipv4_address"]
    network = COMPOSE["networks"]["balancer"]["ipam"]["config"][0]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(network["subnet"])
    # Addresses handed out to the other containers never take the balancer's.
    assert ipaddress.ip_address(address) not in ipaddress.ip_network(
        network["ip_range"]
    )
    for name in ("api", "api-2", "api-3"):
        assert SERVICES[name]["environment"]["TRUSTED_PROXIES"] == address
        assert "balancer" in SERVICES[name]["networks"]
    others = [
        name
        for name, service in SERVICES.items()
        if "TRUSTED_PROXIES" in service.get("environment", {})
    ]
    assert sorted(others) == ["api", "api-2", "api-3"]
