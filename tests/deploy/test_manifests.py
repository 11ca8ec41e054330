"""Deployment files: Kubernetes manifests, the systemd unit, the container image.

They are checked against what the daemon relies on (settings names, HTTP
paths, drain timeout) so that a change on either side shows up here.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from eventbus.config import load_settings
from eventbus.durations import parse_duration
from eventbus.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DEV = ROOT / "deploy" / "k8s-dev"
SYSTEMD = ROOT / "deploy" / "systemd"
UNIT = SYSTEMD / "eventbus-worker@.service"
ENV_EXAMPLE = SYSTEMD / "eventbus.env.example"
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"

# The oldest Kubernetes minor the manifests promise to work on (preStop
# "sleep" needs 1.30).
KUBE_VERSION = "1.30"
# Listed in the directory but applied only when a metrics adapter exists.
OPT_IN = {"hpa.yaml"}

# ---------------------------------------------------------------- helpers


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _manifests() -> dict[str, dict[str, Any]]:
    """kind -> the single object of that kind in deploy/k8s (kustomization excluded)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _load(path):
            assert doc["kind"] not in out, f"two {doc['kind']} objects"
            out[doc["kind"]] = doc
    return out


def _container() -> dict[str, Any]:
    containers = _manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def _configured_settings() -> Settings:
    """The ConfigMap's YAML loaded as the daemon would, with the Secret as environment."""
    objects = _manifests()
    yaml_text = objects["ConfigMap"]["data"]["eventbus.yaml"]
    return _settings_from_yaml(yaml_text, objects["Secret"]["stringData"])


def _settings_from_yaml(text: str, environ: dict[str, str]) -> Settings:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eventbus.yaml"
        path.write_text(text)
        return load_settings(path, environ=environ)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> every value given, in order.

    configparser cannot do this: systemd allows repeated keys (they add up,
    and an empty assignment resets the list) and line continuations.
    """
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    text = re.sub(r"\\\n", " ", text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], defaultdict(list))
            continue
        assert current is not None, f"assignment outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line!r}"
        current[key.strip()].append(value.strip())
    return sections


def _parse_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        out[key] = value
    return out


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_parses(path: Path) -> None:
    docs = _load(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        assert {"apiVersion", "kind"} <= doc.keys()


@pytest.mark.parametrize(
    "path",
    sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"),
    ids=lambda p: p.name,
)
def test_manifest_matches_kubernetes_schema(path: Path) -> None:
    for doc in _load(path):
        # strict: unknown fields (typos) are errors too
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_kustomization_lists_existing_files() -> None:
    (kustomization,) = _load(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization.yaml lists missing {name}"
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk - set(listed) == OPT_IN, "a manifest is neither listed nor opt-in"
    images = {image["name"] for image in kustomization.get("images", [])}
    assert _container()["image"] in images


def test_kustomize_builds() -> None:
    kubectl = shutil.which("kubectl")
    kustomize = shutil.which("kustomize")
    if kustomize:
        cmd = [kustomize, "build", str(K8S)]
    elif kubectl:
        cmd = [kubectl, "kustomize", str(K8S)]
    else:
        pytest.skip("neither kustomize nor kubectl is installed; the Python checks still run")
    built = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(built.stdout) if doc)
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"]


def test_selectors_agree() -> None:
    objects = _manifests()
    deployment = objects["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert _selects(objects["Service"]["spec"]["selector"], pod_labels)
    assert _selects(objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], pod_labels)
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_consumer_name_comes_from_the_pod_name() -> None:
    env = _env(_container())
    field = env["EVENTBUS_CONSUMER__NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.name"


def test_http_port_probes_and_service_agree() -> None:
    objects = _manifests()
    container = _container()
    env = _env(container)
    assert env["EVENTBUS_HTTP__HOST"]["value"] == "0.0.0.0"
    port = int(env["EVENTBUS_HTTP__PORT"]["value"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": port}

    def probe(kind: str) -> tuple[str, Any]:
        get = container[kind]["httpGet"]
        return get["path"], get["port"]

    assert probe("livenessProbe") == ("/healthz", "http")
    assert probe("readinessProbe") == ("/readyz", "http")
    assert probe("startupProbe") == ("/healthz", "http")
    (service_port,) = objects["Service"]["spec"]["ports"]
    assert service_port["targetPort"] in ("http", port)
    annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == port


def test_grace_period_exceeds_drain_timeout() -> None:
    spec = _manifests()["Deployment"]["spec"]["template"]["spec"]
    pre_stop = _container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = _configured_settings().consumer.drain_timeout
    assert spec["terminationGracePeriodSeconds"] > drain + pre_stop


def test_pod_is_locked_down() -> None:
    spec = _manifests()["Deployment"]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    context = _container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    resources = _container()["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


def test_config_and_secret_are_wired_in() -> None:
    objects = _manifests()
    container = _container()
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    args = container["args"]
    assert args[-1] == "run"
    config_path = Path(args[args.index("--config") + 1])
    config_volume = volumes[mounts[str(config_path.parent)]]
    assert config_volume["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert config_path.name in objects["ConfigMap"]["data"]
    (env_from,) = container["envFrom"]
    assert env_from["secretRef"]["name"] == objects["Secret"]["metadata"]["name"]


def test_configmap_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _manifests()["Secret"]["stringData"]
    for key, value in secret.items():
        if key.startswith("EVENTBUS_"):
            monkeypatch.setenv(key, value)
    settings = _configured_settings()
    assert settings.channels and settings.subscriptions
    assert settings.broker.redis_url.get_secret_value() == secret["EVENTBUS_BROKER__REDIS_URL"]


def test_secret_holds_only_placeholders() -> None:
    for key, value in _manifests()["Secret"]["stringData"].items():
        if value.startswith("whsec_"):
            value = base64.b64decode(value.removeprefix("whsec_")).decode()
        assert "PLACEHOLDER" in value or ".invalid" in value, f"{key} looks real"


def test_hpa_scales_on_stream_lag() -> None:
    (metric,) = _manifests()["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "eventbus_stream_lag"
    group = _configured_settings().consumer.group
    assert metric["external"]["metric"]["selector"]["matchLabels"] == {"group": group}


# ---------------------------------------------------------------- systemd


def _unit() -> dict[str, dict[str, list[str]]]:
    return _parse_unit(UNIT.read_text())


def test_unit_runs_as_notify_service_with_watchdog() -> None:
    service = _unit()["Service"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert parse_duration(service["WatchdogSec"][-1]) > 0
    assert service["Restart"] == ["on-failure"]
    assert "2" in service["RestartPreventExitStatus"][-1].split()
    assert service["ExecStart"] == [
        "/usr/local/bin/eventbus --config /etc/eventbus/eventbus.yaml run"
    ]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_environment() -> None:
    service = _unit()["Service"]
    assert "EVENTBUS_CONSUMER__NAME=%H-%i" in service["Environment"]
    assert service["EnvironmentFile"] == [
        "-/etc/eventbus/eventbus.env",
        "-/etc/eventbus/%i.env",
    ]


def test_unit_stop_timeout_exceeds_drain_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _parse_env_file(ENV_EXAMPLE).items():
        if key.startswith("EVENTBUS_"):
            monkeypatch.setenv(key, value)
    drain = Settings().consumer.drain_timeout
    assert parse_duration(_unit()["Service"]["TimeoutStopSec"][-1]) > drain


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_unit_hardening(key: str, value: str) -> None:
    assert _unit()["Service"][key][-1] == value


def test_unit_limits_memory_and_filters_syscalls() -> None:
    service = _unit()["Service"]
    assert service["MemoryMax"]
    assert service["SystemCallFilter"][0] == "@system-service"


def test_env_example_is_valid_and_leaves_per_instance_keys_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _parse_env_file(ENV_EXAMPLE)
    assert "EVENTBUS_CONSUMER__NAME" not in env
    assert "EVENTBUS_HTTP__PORT" not in env
    for key, value in env.items():
        if key.startswith("EVENTBUS_"):
            monkeypatch.setenv(key, value)
    settings = Settings()  # extra="forbid": a misspelt name fails here
    assert settings.broker.redis_url.get_secret_value() == env["EVENTBUS_BROKER__REDIS_URL"]


def _verifiable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a stub, since eventbus is not in /usr/local/bin."""
    stub = tmp_path / "eventbus"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/eventbus", str(stub)))
    return unit


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        # Debian's "systemd" package provides it; CI should install it.
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return tool


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    result = subprocess.run(
        [tool, "verify", str(_verifiable_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "eventbus-worker" not in result.stderr, result.stderr


def test_systemd_analyze_security_exposure(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    result = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(_verifiable_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr:
        pytest.skip("this systemd-analyze has no offline security check (needs systemd 252)")
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    # 0 is fully locked down, 10 is unprotected; systemd calls <= 2 "OK".
    assert float(match.group(1)) <= 2.0


# ---------------------------------------------------------------- container


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_containerfile_is_multi_stage_and_unprivileged() -> None:
    steps = _instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith("AS builder")
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    (user,) = [rest for word, rest in final if word == "USER"]
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"
    assert ("ENTRYPOINT", '["eventbus"]') in final
    assert ("CMD", '["run"]') in final
    assert ("EXPOSE", "8080") in final
    assert any(w == "COPY" and r.startswith("--from=builder") for w, r in final)
    arg = next(rest for word, rest in steps if word == "ARG" and rest.startswith("PYTHON_IMAGE"))
    assert arg == "PYTHON_IMAGE=python:3.11-slim"


def test_containerfile_copies_paths_that_exist() -> None:
    for word, rest in _instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Containerfile copies missing {source}"


# ---------------------------------------------------------------- the dev overlay


def test_dev_overlay_adds_a_redis_and_points_the_workers_at_it() -> None:
    (kustomization,) = _load(DEV / "kustomization.yaml")
    assert kustomization["resources"] == ["../k8s", "redis.yaml"]
    docs = _load(DEV / "redis.yaml")
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    service = next(doc for doc in docs if doc["kind"] == "Service")
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (patch,) = kustomization["patches"]
    assert patch["target"] == {"kind": "Secret", "name": "eventbus-secrets"}
    (operation,) = yaml.safe_load(patch["patch"])
    # the key the base's Secret really has, and the Service above
    assert operation["path"].rsplit("/", 1)[-1] in _manifests()["Secret"]["stringData"]
    url = operation["value"]
    assert url == f"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/0"
    Settings(broker={"redis_url": url})  # a URL the settings accept


def test_dev_overlay_builds() -> None:
    kustomize, kubectl = shutil.which("kustomize"), shutil.which("kubectl")
    if not (kustomize or kubectl):
        pytest.skip("neither kustomize nor kubectl is installed; the Python checks still run")
    cmd = [kustomize, "build", str(DEV)] if kustomize else [str(kubectl), "kustomize", str(DEV)]
    built = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    secret = next(doc for doc in docs if doc["kind"] == "Secret")
    assert secret["stringData"]["EVENTBUS_BROKER__REDIS_URL"].startswith("redis://eventbus-redis")
