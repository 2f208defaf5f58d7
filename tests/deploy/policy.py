"""Checks of the deployment files that their tools' parsers do not make.

    policy.py compose -          `docker-compose config --format json` on stdin
    policy.py kubernetes -       `kubectl kustomize OVERLAY` on stdin
    policy.py loki FILE          deploy/loki/config.yaml
    policy.py grafana DIR        deploy/grafana/provisioning
    policy.py dockerfile FILE    Dockerfile (+ .dockerignore beside it)

Prints every problem and exits 1 when there is one. Called by tests/deploy/check.
"""

import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
# The only services whose ports are published by default (issue 8).
PUBLISHED = {"observer", "grafana"}
problems = []


def problem(message):
    problems.append(message)


def pinned(image):
    """A version tag (not `latest`, with a digit) or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return False
    return tag != "latest" and any(c.isdigit() for c in tag)


def check_compose(config):
    services = config["services"]
    one_shot = {name for name, s in services.items() if s.get("restart", "no") == "no"}
    for name, service in services.items():
        image = service.get("image")
        if "build" not in service and not (image and pinned(image)):
            problem(f"compose: service {name}: image {image!r} is not pinned to a version")
        if name not in one_shot:
            test = (service.get("healthcheck") or {}).get("test") or []
            if not test or test[0] == "NONE" or service["healthcheck"].get("disable"):
                problem(f"compose: long-running service {name} has no healthcheck")
        if service.get("ports") and name not in PUBLISHED:
            problem(f"compose: service {name} publishes ports; only {sorted(PUBLISHED)} may")
        for dependency, how in (service.get("depends_on") or {}).items():
            want = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            if how.get("condition") != want:
                problem(f"compose: {name} depends on {dependency} with {how.get('condition')}, want {want}")
        for volume in service.get("volumes") or []:
            if volume.get("type") == "bind" and not pathlib.Path(volume["source"]).exists():
                problem(f"compose: {name} mounts {volume['source']}, which does not exist")
            if volume.get("type") == "volume" and volume.get("source") not in (config.get("volumes") or {}):
                problem(f"compose: {name} uses volume {volume.get('source')} that is not declared")
    for name in PUBLISHED:
        if not services.get(name, {}).get("ports"):
            problem(f"compose: {name} publishes no port")
    demo = [n for n, s in services.items() if "demo" in (s.get("profiles") or [])]
    if not demo:
        problem("compose: no service in the demo profile")


def duration_seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unsupported duration {text!r}")
    value, unit = int(match.group(1)), match.group(2)
    return value / 1000 if unit == "ms" else value * (60 if unit == "m" else 1)


def check_kubernetes(documents):
    by_kind = {}
    for doc in documents:
        if doc:
            by_kind.setdefault(doc["kind"], []).append(doc)
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"):
        if kind not in by_kind:
            problem(f"kubernetes: no {kind} rendered")
    if problems:
        return
    config = by_kind["ConfigMap"][0]["data"]
    pod = by_kind["Deployment"][0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in probes.items():
        if (container.get(probe) or {}).get("httpGet", {}).get("path") != path:
            problem(f"kubernetes: {probe} must GET {path}")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        if not {"cpu", "memory"} <= set(resources.get(part) or {}):
            problem(f"kubernetes: container needs cpu and memory {part}")
    security = container.get("securityContext") or {}
    if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation") is not False:
        problem("kubernetes: container must have a read-only root filesystem and no privilege escalation")
    if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
        problem("kubernetes: pod must run as non-root")
    mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
    if config.get("OBSERVER_DATA_DIR", "./observer-data") not in mounts:
        problem("kubernetes: OBSERVER_DATA_DIR must be a mounted (writable) volume")
    # Observer's drain deadline (default 15s) + the preStop pause must fit
    # in the grace period, or the kubelet kills it mid-drain.
    shutdown = duration_seconds(config.get("OBSERVER_SHUTDOWN_TIMEOUT", "15s"))
    pause = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= shutdown + pause:
        problem(f"kubernetes: terminationGracePeriodSeconds {grace} must exceed shutdown {shutdown}s + preStop {pause}s")


def check_loki(path):
    text = path.read_text()
    for match in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}", text):
        if not match.group(2).startswith(":-"):
            problem(f"loki: ${{{match.group(1)}}} has no default (-config.expand-env leaves it empty)")
    config = yaml.safe_load(text)
    periods = config["schema_config"]["configs"]
    latest = periods[-1]
    if latest.get("store") != "tsdb" or latest.get("schema") != "v13":
        problem("loki: the current schema period must be tsdb, v13 (structured metadata needs both)")
    if latest.get("index", {}).get("period") != "24h":
        problem("loki: retention needs a 24h index period")
    limits = config.get("limits_config") or {}
    if limits.get("allow_structured_metadata") is not True:
        problem("loki: limits_config.allow_structured_metadata must be true")
    if limits.get("deletion_mode") in (None, "disabled"):
        problem("loki: limits_config.deletion_mode must enable deletion")
    if "retention_period" not in limits:
        problem("loki: limits_config.retention_period is not set")
    compactor = config.get("compactor") or {}
    if compactor.get("retention_enabled") is not True or not compactor.get("delete_request_store"):
        problem("loki: compactor needs retention_enabled: true and a delete_request_store")


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def check_grafana(directory):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    environment = set(grafana.get("environment") or {})
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana.get("volumes") or [] if v.startswith("./")}
    datasources = {}
    for file in sorted(directory.glob("*/*.yml")):
        document = yaml.safe_load(file.read_text())
        # Grafana expands $VAR / ${VAR} in values from its environment; `$$` is a literal `$`.
        for value in strings(document):
            for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", value.replace("$$", "")):
                if name not in environment:
                    problem(f"grafana: {file.name} uses ${name}, which compose does not set for grafana")
        for source in document.get("datasources") or []:
            datasources[source["uid"]] = source
        for provider in document.get("providers") or []:
            path = provider["options"]["path"]
            if path not in mounts:
                problem(f"grafana: dashboards path {path} is not mounted by compose")
    for uid, kind in (("loki", "loki"), ("prometheus", "prometheus")):
        if datasources.get(uid, {}).get("type") != kind:
            problem(f"grafana: no {kind} datasource with uid {uid!r}")
    fields = (datasources.get("loki", {}).get("jsonData") or {}).get("derivedFields") or []
    links = [f for f in fields if f.get("matcherType") == "label" and re.fullmatch(r"\^?session_id\$?", f.get("matcherRegex", ""))]
    if not links or "/replay/$${__value.raw}" not in links[0].get("url", ""):
        problem("grafana: the Loki datasource needs a session_id label derived field linking to /replay/$${__value.raw}")


def check_dockerfile(path):
    allowed = [line[1:].rstrip("/") for line in (path.parent / ".dockerignore").read_text().split("\n")
               if line.startswith("!")]
    for line in path.read_text().split("\n"):
        if line.startswith("FROM "):
            image = line.split()[1]
            if not pinned(image):
                problem(f"Dockerfile: {image} is not pinned to a version")
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                if source.startswith("--"):
                    continue
                if not (path.parent / source).exists():
                    problem(f"Dockerfile: COPY {source}: no such file")
                if not any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed):
                    problem(f"Dockerfile: COPY {source}: excluded by .dockerignore")


def main():
    what, where = sys.argv[1], sys.argv[2]
    source = sys.stdin if where == "-" else None
    if what == "compose":
        check_compose(json.load(source))
    elif what == "kubernetes":
        check_kubernetes(list(yaml.safe_load_all(source)))
    elif what == "loki":
        check_loki(pathlib.Path(where))
    elif what == "grafana":
        check_grafana(pathlib.Path(where))
    elif what == "dockerfile":
        check_dockerfile(pathlib.Path(where))
    else:
        sys.exit(f"policy.py: unknown check {what!r}")
    for message in problems:
        print(f"deploy check: {message}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
