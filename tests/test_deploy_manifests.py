"""The deployment artifacts, checked offline: Dockerfile, compose.yaml, deploy/kubernetes/.

Every Kubernetes manifest is validated against the API's schemas as a server would (strict:
an unknown field is an error) with ``kubernetes-validate``, which bundles them; KEDA's
resources, custom resources, against the models ``cloudcoil-models-keda`` generates from
KEDA's CRDs; compose.yaml against the Compose specification's schema that
``check-jsonschema`` bundles. Nothing is downloaded. Then the contracts scripts and charts
rely on: every process runs its Procfile line, the workers' grace period follows the README's
rule, KEDA watches the work queue the settings name, and the workers cannot reach private
networks.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from screenshots.core.options import DEFAULT_TIMEOUT
from screenshots.core.settings import DEFAULT_MAX_ATTEMPTS, load_settings
from screenshots.delivery.topology import policy_definition
from support.procfile import procfile

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
#: Kubernetes version the manifests are validated for (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.30"
#: Seconds the README's rule adds to the longest capture plus upload.
GRACE_MARGIN = 30
#: Memory of a pool process, MiB: Python 250 MB (the Celery main process 59 MB and its pool
#: process 185 MB PSS with 4 tabs: ``python -m screenshots.dev.bench.delivery --only soak``),
#: plus its Chromium's 250 MB per tab (one process, 4 tabs: Chromium 994 MB PSS after 150
#: captures, deploy/README.md).
PYTHON_MIB = 250 * 1000**2 / 1024**2
CHROMIUM_PER_TAB_MIB = 250 * 1000**2 / 1024**2
#: Addresses the workers must not reach: RFC 1918, link-local (cloud metadata).
PRIVATE_PROBES = ["10.0.0.1", "10.96.0.10", "172.16.0.1", "172.31.255.254", "192.168.1.1",
                  "169.254.169.254", "127.0.0.1", "fd00:ec2::254", "fe80::1"]
PUBLIC_PROBES = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every resource under deploy/kubernetes but kustomization."""
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for _, doc in manifests()
               if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def container(deployment: str) -> dict[str, Any]:
    containers = resource("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def shell_line(command: list[str]) -> str:
    """The line a ``["/bin/sh", "-c", LINE]`` command runs."""
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3, command
    return command[2]


# -- Kubernetes: schemas -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,doc",
    [pytest.param(n, d, id=f"{n}:{d['kind']}/{d['metadata']['name']}") for n, d in manifests()],
)
def test_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith("keda.sh/"):
        validate_keda(doc)
        return
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def validate_keda(doc: dict[str, Any]) -> None:
    """Validate a KEDA resource against its CRD's model; an unknown field is an error too."""
    pytest.importorskip("cloudcoil.models.keda")
    from cloudcoil.models.keda import v1alpha1

    model = getattr(v1alpha1, doc["kind"])
    parsed = model.model_validate(doc)
    # The models ignore unknown fields: a misspelt one (minReplicaCounts) would pass, so the
    # document must come back unchanged from the model.
    assert parsed.model_dump(by_alias=True, exclude_none=True) == doc


def test_the_validator_rejects_a_broken_manifest() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    broken = json.loads(json.dumps(resource("Deployment", "screenshots-worker")))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 120
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    scaled = json.loads(json.dumps(resource("ScaledObject", "screenshots-worker")))
    scaled["spec"]["minReplicaCounts"] = 0
    with pytest.raises(AssertionError):
        validate_keda(scaled)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(on_disk)
    assert kustomization["namespace"] == resource("Namespace", "screenshots")["metadata"]["name"]


# -- Kubernetes: contracts -------------------------------------------------------------------


def test_every_process_runs_its_procfile_line() -> None:
    lines = procfile()
    for deployment, process in [
        ("screenshots-worker", "worker"),
        ("screenshots-api", "web"),
        ("screenshots-flower", "flower"),
        ("screenshots-worker-metrics", "worker-metrics"),
    ]:
        spec = container(deployment)
        assert "command" not in spec, "the image's entry point (tini) must stay"
        assert shell_line(spec["args"]) == lines[process], deployment


def test_worker_grace_period_follows_the_readme_rule() -> None:
    config = resource("ConfigMap", "screenshots-config")["data"]
    attempts = int(config.get("SCREENSHOT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
    rule = DEFAULT_TIMEOUT * attempts + GRACE_MARGIN  # 30 s x 3 + 30 s = 120 s
    pod = resource("Deployment", "screenshots-worker")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= rule


def test_worker_memory_is_sized_for_its_browsers() -> None:
    config = resource("ConfigMap", "screenshots-config")["data"]
    processes = int(config["WORKER_CONCURRENCY"])
    tabs = int(config["SCREENSHOT_TABS"])  # set: the default follows the node's cores
    resources = container("screenshots-worker")["resources"]
    per_process = PYTHON_MIB + tabs * CHROMIUM_PER_TAB_MIB
    assert mebibytes(resources["requests"]["memory"]) >= processes * per_process
    assert mebibytes(resources["limits"]["memory"]) >= mebibytes(resources["requests"]["memory"])


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_keda_scales_workers_on_the_work_queue() -> None:
    queue = load_settings({}).queue
    assert resource("ConfigMap", "screenshots-config")["data"]["SCREENSHOT_QUEUE"] == queue
    spec = resource("ScaledObject", "screenshots-worker")["spec"]
    assert spec["scaleTargetRef"]["name"] == "screenshots-worker"
    assert spec["minReplicaCount"] == 0
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == queue
    assert trigger["metadata"]["mode"] == "QueueLength"
    # Over the management API, unacknowledged messages (captures running) count too.
    assert trigger["metadata"]["protocol"] == "http"
    auth = resource("TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    assert resource("Secret", ref["name"])["stringData"][ref["key"]].startswith("http://")


def test_network_policy_keeps_workers_off_private_networks() -> None:
    policy = resource("NetworkPolicy", "screenshots-worker-egress")["spec"]
    labels = resource("Deployment", "screenshots-worker")["spec"]["template"]["metadata"]
    assert policy["podSelector"]["matchLabels"].items() <= labels["labels"].items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["ingress"] == []
    blocks = [peer["ipBlock"] for rule in policy["egress"] for peer in rule["to"]
              if "ipBlock" in peer]
    for address in PRIVATE_PROBES:
        assert not any(allows(block, address) for block in blocks), address
    for address in PUBLIC_PROBES:
        assert any(allows(block, address) for block in blocks), address
    # DNS, the broker, Redis: by pod label, on their ports only.
    ports = {port["port"] for rule in policy["egress"] if "ports" in rule
             for port in rule["ports"]}
    assert {53, 5672, 6379} <= ports


def allows(block: dict[str, Any], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    network = ipaddress.ip_network(block["cidr"])
    if ip.version != network.version or ip not in network:
        return False
    return not any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))


def test_secrets_hold_only_placeholders() -> None:
    for name, doc in manifests():
        if doc["kind"] == "Secret":
            assert name.endswith(".example.yaml")
            for value in doc["stringData"].values():
                assert "PLACEHOLDER" in value, value


def test_setup_job_applies_the_policy() -> None:
    job = resource("Job", "screenshots-broker-setup")["spec"]["template"]["spec"]
    line = shell_line(job["containers"][0]["args"])
    assert line.startswith("screenshots-broker setup && screenshots-stack-setup --policy")


# -- the stack setup script ------------------------------------------------------------------


def test_stack_setup_applies_the_policy_of_the_topology() -> None:
    sys.path.insert(0, str(ROOT / "deploy" / "docker"))
    try:
        import stack_setup
    finally:
        sys.path.remove(str(ROOT / "deploy" / "docker"))
    vhost, name, body = stack_setup.policy_request("screenshots", "/")
    assert (vhost, name) == ("/", "screenshots-delivery")
    assert body["definition"] == policy_definition("screenshots")
    assert body["pattern"] == "^screenshots$"
    assert body["apply-to"] == "queues"


# -- Dockerfile --------------------------------------------------------------------------------


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def instruction(name: str) -> list[str]:
    return [line[len(name) + 1:] for line in dockerfile() if line.startswith(name + " ")]


def test_image_default_command_is_the_procfile_worker() -> None:
    (cmd,) = instruction("CMD")
    assert shell_line(json.loads(cmd)) == procfile()["worker"]
    (entrypoint,) = instruction("ENTRYPOINT")
    assert json.loads(entrypoint)[:2] == ["/usr/bin/tini", "--"]  # without -g


def test_image_is_debian_with_the_makefiles_packages() -> None:
    assert all(base.split()[0] == "debian:bookworm-slim" for base in instruction("FROM"))
    makefile = (ROOT / "Makefile").read_text()
    apt = re.search(r"^APT_PKGS\s*:=(.*)$", makefile, re.M).group(1).split()  # type: ignore[union-attr]
    installed = set(shlex.split(" ".join(instruction("RUN"))))
    assert set(apt) - {"python3.11-doc"} <= installed
    assert {"python3.11", "tini"} <= installed
    (user,) = instruction("USER")
    assert user.split(":")[0] not in ("0", "root")
    assert instruction("HEALTHCHECK")
    assert any("-c requirements.txt" in run or "-r requirements.txt" in run
               for run in instruction("RUN"))


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for copy in instruction("COPY"):
        if copy.startswith("--from="):
            continue
        for source in copy.split()[:-1]:
            assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), \
                source


# -- compose.yaml ----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def unescaped(line: str) -> str:
    """A Compose string as the container sees it: ``$$`` is a literal ``$``."""
    return line.replace("$$", "$")


def compose_errors(doc: dict[str, Any]) -> list[str]:
    """What the Compose specification's JSON schema (bundled by check-jsonschema) finds wrong."""
    pytest.importorskip("check_jsonschema")
    import importlib.resources

    import jsonschema

    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [error.message for error in validator.iter_errors(doc)]


def test_compose_file_follows_the_compose_specification() -> None:
    assert compose_errors(compose()) == []
    broken = compose()
    broken["services"]["worker"]["stop_grace_periods"] = "120s"
    assert compose_errors(broken)


def test_compose_runs_the_whole_stack() -> None:
    services = compose()["services"]
    assert {"rabbitmq", "redis", "s3", "setup", "worker", "flower", "api", "worker-metrics",
            "dispatcher"} <= set(services)
    lines = procfile()
    for service, process in [("worker", "worker"), ("api", "web"), ("flower", "flower"),
                             ("worker-metrics", "worker-metrics")]:
        assert unescaped(shell_line(services[service]["command"])) == lines[process], service


def test_compose_workers_scale_and_wait_for_setup() -> None:
    services = compose()["services"]
    worker = services["worker"]
    # --scale worker=N: no fixed name, no published port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert shell_line(services["setup"]["command"]).startswith("screenshots-broker setup && ")
    rule = DEFAULT_TIMEOUT * DEFAULT_MAX_ATTEMPTS + GRACE_MARGIN
    assert int(worker["stop_grace_period"].rstrip("s")) >= rule
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"]


def test_compose_links_use_an_endpoint_the_user_reaches() -> None:
    doc = compose()
    s3 = doc["services"]["s3"]
    endpoint = doc["services"]["worker"]["environment"]["AWS_ENDPOINT_URL_S3"]
    host, port = re.fullmatch(r"http://(\$\{[^}]+\}):(\$\{[^}]+\})", endpoint).groups()  # type: ignore[union-attr]
    # Inside the stack the S3 service answers to that host name; outside, the same port is
    # published on this machine, where *.localhost resolves.
    assert host in s3["networks"]["default"]["aliases"]
    assert host.endswith(":-s3.localhost}")
    assert any(published.endswith(f"{port}:{port}") for published in s3["ports"])
    assert f"-s3.port={port}" in s3["command"]


# -- the image's scripts -----------------------------------------------------------------------


def test_entrypoint_runs_the_dispatcher_from_any_directory(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["sh", str(ROOT / "deploy" / "docker" / "entrypoint.sh"), "python", "dispatcher.py",
         "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--out" in done.stdout
    # Any other command runs as given, its exit status kept.
    done = subprocess.run(["sh", str(ROOT / "deploy" / "docker" / "entrypoint.sh"), "sh", "-c",
                           "exit 3"], cwd=tmp_path, timeout=60)
    assert done.returncode == 3


@pytest.mark.integration
def test_stack_setup_puts_the_versions_lifecycle_rule_on_the_bucket(
    s3_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, bucket = s3_bucket
    sys.path.insert(0, str(ROOT / "deploy" / "docker"))
    try:
        import stack_setup
    finally:
        sys.path.remove(str(ROOT / "deploy" / "docker"))
    for name, value in {**server.env(bucket), "SCREENSHOT_VERSION_DAYS": "21"}.items():
        monkeypatch.setenv(name, value)
    assert stack_setup.main(["--bucket", "--wait", "10"]) == 0
    (rule,) = server.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["Expiration"] == {"Days": 21}
    assert rule["Filter"]["And"]["Tags"] == [{"Key": "screenshots-kind", "Value": "version"}]
