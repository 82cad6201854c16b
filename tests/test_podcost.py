"""Busy pods last: a real worker sets its pod's deletion cost through an HTTPS API server (workers/podcost.py).

No cluster runs here, so a local HTTPS server with an openssl certificate stands in for the Kubernetes API
server (as a local receiver does for Sentry) and records what the worker sends it.
"""

from __future__ import annotations

import itertools
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests import tasks_recovery as rt
from tests.conftest import Processes, wait_for
from tests.prereqs import require_command
from workers.podcost import ANNOTATION

TOKEN = "service-account-token-123"
POD, NAMESPACE = "taskrail-worker-rec-7d9f-abcde", "jobs"


class FakeApiServer:
    """Records PATCHes to pods; answers ``status`` (200, or 403 as a cluster without the Role would)."""

    def __init__(self, cert: Path, key: Path, status: int = 200) -> None:
        self.patches: list[dict[str, Any]] = []
        recorded, code = self.patches, status

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorded.append({"path": self.path, "auth": self.headers["Authorization"],
                                 "type": self.headers["Content-Type"], "body": json.loads(body)})  # fmt: skip
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def costs(self) -> list[str]:
        return [p["body"]["metadata"]["annotations"][ANNOTATION] for p in self.patches]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def account(tmp_path: Path) -> Path:
    """A service account directory as the kubelet mounts it: token, CA certificate (and the server's key)."""
    openssl = require_command("openssl", "install it (apt-get install openssl) to make the API server's certificate")
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(folder / "ca.crt")], check=True, capture_output=True, timeout=60)  # fmt: skip
    (folder / "token").write_text(TOKEN + "\n")
    return folder


def _api(account: Path, status: int = 200) -> FakeApiServer:
    return FakeApiServer(account / "ca.crt", account.parent / "key.pem", status)


@pytest.fixture
def api(account: Path) -> Iterator[FakeApiServer]:
    server = _api(account)
    yield server
    server.close()


def _pod_env(api: FakeApiServer, account: Path) -> dict[str, str]:
    return {"TASKRAIL_IMPORTS": "tests.tasks_recovery", "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(api.port), "POD_NAME": POD, "POD_NAMESPACE": NAMESPACE,
            "POD_SERVICE_ACCOUNT_DIR": str(account)}  # fmt: skip


def test_a_busy_worker_raises_its_pods_deletion_cost_and_an_idle_one_lowers_it(
    settings, procs: Processes, conn: redis.Redis, api: FakeApiServer, account: Path
) -> None:
    procs.worker("rec", env=_pod_env(api, account))
    result = rt.gated_job.delay("pod:gate")
    wait_for(lambda: "1" in api.costs(), 20, what="the cost of a pod running one job")
    assert api.costs()[0] in ("0", "1")  # an idle start may report 0 first
    conn.rpush("pod:gate", "open")
    assert result.get(timeout=20) == "done"
    wait_for(lambda: api.costs()[-1] == "0", 20, what="the cost back to 0 once idle")
    patch = api.patches[-1]
    assert patch["path"] == f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}"
    assert patch["auth"] == f"Bearer {TOKEN}" and patch["type"] == "application/merge-patch+json"
    assert patch["body"] == {"metadata": {"annotations": {ANNOTATION: "0"}}}
    costs = api.costs()
    assert all(a != b for a, b in itertools.pairwise(costs)), f"patched without a change: {costs}"


def test_a_refused_patch_is_logged_with_the_fix_and_jobs_still_run(
    settings, procs: Processes, conn: redis.Redis, account: Path
) -> None:
    refusing = _api(account, status=403)
    try:
        worker = procs.worker("rec", env=_pod_env(refusing, account))
        result = rt.gated_job.delay("pod:gate")
        wait_for(lambda: refusing.patches, 20, what="a patch attempt")
        conn.rpush("pod:gate", "open")
        assert result.get(timeout=20) == "done"
        log = wait_for(lambda: "needs `patch` on pods" in procs.log(worker) and procs.log(worker), 10)
        assert "HTTP 403" in str(log) and "deploy/kubernetes/rbac.yaml" in str(log)
        assert worker.poll() is None, "a refused patch must not stop the worker"
    finally:
        refusing.close()


def test_outside_kubernetes_nothing_is_patched(settings, procs: Processes, api: FakeApiServer) -> None:
    procs.worker("rec", env={"TASKRAIL_IMPORTS": "tests.tasks_recovery"})  # no POD_NAME, no account: no pod
    assert rt.long_job.delay(0.01).get(timeout=20) == "done"
    assert api.patches == []


def test_rendered_workers_run_as_an_account_that_may_only_patch_pods() -> None:
    from config.scaling import load_profile
    from deploy.render import render

    root = Path(__file__).resolve().parent.parent
    files = render(load_profile(root / "config" / "scaling.yaml", "production"), "kubernetes")
    documents = {d["kind"]: d for d in yaml.safe_load_all(files["rbac.yaml"]) if d}
    assert documents["Role"]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}]
    account = documents["ServiceAccount"]["metadata"]["name"]
    assert documents["RoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": account}]
    assert "rbac.yaml" in yaml.safe_load(files["kustomization.yaml"])["resources"]
    for name, text in files.items():
        for document in yaml.safe_load_all(text):
            if document and document["kind"] == "Deployment" and name.startswith("worker-"):
                pod = document["spec"]["template"]["spec"]
                assert pod["serviceAccountName"] == account, name
                env = {e["name"]: e.get("valueFrom") for e in pod["containers"][0]["env"]}
                assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}, name
