"""``deploy/docker-compose.yml`` and the files it mounts, checked without a Docker engine (none
runs where the tests run): the services and images are there, the mounted files exist,
Prometheus scrapes the bus nodes at their configured port and loads the rule file, Grafana is
provisioned with the dashboard, and the nodes' configuration loads for each node's environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bus.config.loader import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def bus_nodes() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("command", [None])[0] == "serve"
    }


def test_the_services_and_their_images() -> None:
    services = compose()["services"]
    images = {name: s.get("image", "") for name, s in services.items()}
    assert images["rabbitmq"].startswith("rabbitmq:3")
    assert images["postgres"].startswith("postgres:")
    assert images["prometheus"].startswith("prom/prometheus:")
    assert images["grafana"].startswith("grafana/grafana:")
    nodes = bus_nodes()
    assert set(nodes) == {"node-1", "node-2", "node-3"}  # a gateway and two provider nodes
    for name, node in nodes.items():
        assert node["image"] == "interagency-bus:dev"
        assert node["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / node["build"]["context"] / node["build"]["dockerfile"]).is_file()
        assert node["environment"]["BUS_NODE__NAME"] == name
        assert "/health/ready" in " ".join(node["healthcheck"]["test"])
        assert {"rabbitmq", "keys"} <= set(node["depends_on"])


def test_every_mounted_file_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is missing"


def test_prometheus_scrapes_the_nodes_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [bus] = [job for job in config["scrape_configs"] if job["job_name"] == "bus"]
    targets = {t for sc in bus["static_configs"] for t in sc["targets"]}
    port = load_settings(DEPLOY / "config" / "bus.yaml", check_references=False).node.listen
    assert targets == {f"{node}:{port.rsplit(':', 1)[1]}" for node in bus_nodes()}
    for rules in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rules).is_file()
    local = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-local.yml").read_text())
    assert local["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:8080"]
    assert local["rule_files"] == config["rule_files"]


def test_grafana_is_provisioned_with_the_prometheus_source_and_the_dashboard() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("."))
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["type"] == "prometheus"
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "bus.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    assert mounts["./grafana/dashboard.json"] == f"{folder}/dashboard.json"


@pytest.mark.parametrize("node", ["node-1", "node-2", "node-3"])
def test_the_nodes_configuration_loads_with_each_nodes_environment(
    node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = bus_nodes()[node]["environment"]
    for key, value in environment.items():
        monkeypatch.setenv(key, value.replace("${BUS_BROKER_PASSWORD:-change-me}", "secret"))
    settings = load_settings(DEPLOY / "config" / "bus.yaml", check_references=False)
    assert settings.node.name == node
    assert settings.node.hosts == yaml.safe_load(environment["BUS_NODE__HOSTS"])
    assert settings.transport_url() == "amqp://bus:secret@rabbitmq:5672/%2F"
    services = compose()["services"]
    for service in settings.services.values():
        options = service.adapter.options()
        host = options.get("base_url", options.get("url", "")).split("@")[-1].split("//")[-1]
        assert host.split(":")[0] in services, f"{host} is no service of the compose file"
