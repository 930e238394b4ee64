"""Build the serving image with the real Dockerfile and run it as the cluster
would (ops/container-smoke.sh): non-root, read-only root filesystem, all
capabilities dropped, tmpfs /tmp, readiness, a prediction on loopback, a
graceful stop.

Builds on the local base image from ops/make-base-image.sh (no registry is
reachable here) with podman, from a fresh copy of the build context holding a
model trained by this test session: the result does not depend on whatever
the developer's artifacts/ holds, and the check covers today's code.

Image size and build time go to artifacts/container-report.json.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, skip_or_fail

from iris_classifier.model_training import publish

# The first test to run builds the image (about 90 s cold on 2 cores).
pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

BASE_IMAGE = os.environ.get("IRIS_BASE_IMAGE", "localhost/iris-base:bookworm")
IMAGE = "localhost/iris-classifier:test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Exactly what the Dockerfile copies from the context (tests/test_shipping.py
# checks that the .dockerignore allow-list admits the same paths).
CONTEXT_FILES = ["Dockerfile", ".dockerignore", "requirements.lock"]
CONTEXT_DIRS = ["iris_classifier", "webapp"]


def _podman_usable():
    if not shutil.which("podman"):
        return "podman is not installed (ops/install-container-tools.sh installs it)"
    if not shutil.which("curl"):
        return "curl is not installed (ops/install-container-tools.sh installs it)"
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"podman cannot run here: {info.stderr.strip()[-300:]}"
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], timeout=60).returncode != 0:
        return f"no local base image {BASE_IMAGE} (ops/make-base-image.sh makes it)"
    return None


@pytest.fixture(scope="module")
def build_context(tmp_path_factory, trained):
    reason = _podman_usable()
    if reason:
        skip_or_fail(reason)
    missing = [p for p in CONTEXT_FILES + CONTEXT_DIRS if not (ROOT / p).exists()]
    if missing:
        skip_or_fail(f"the build context is incomplete, missing: {', '.join(missing)}")
    context = tmp_path_factory.mktemp("context")
    for name in CONTEXT_FILES:
        shutil.copy2(ROOT / name, context / name)
    for name in CONTEXT_DIRS:
        shutil.copytree(ROOT / name, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    publish(trained, context / "artifacts" / "model")
    return context


@pytest.fixture(scope="module")
def image(build_context):
    env = dict(os.environ, CONTAINER_ENGINE="podman", BUILD_CONTEXT=str(build_context), BASE_IMAGE=BASE_IMAGE)
    if CA_BUNDLE.exists():
        env["CA_BUNDLE"] = str(CA_BUNDLE)
    result = subprocess.run(["bash", str(ROOT / "ops" / "build-image.sh"), IMAGE], env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    seconds = int(re.search(r"^build-seconds (\d+)$", result.stdout, re.M).group(1))
    # A step reused from the layer cache prints "Using cache"; all of them, a fully warm build.
    reused = len(re.findall(r"Using cache", result.stdout))
    return {"build_seconds": seconds, "cached_steps": reused}


def test_image_serves_predictions_as_the_cluster_runs_it(image, tmp_path):
    report_path = tmp_path / "smoke.json"
    result = subprocess.run(["bash", str(ROOT / "ops" / "container-smoke.sh"), IMAGE, str(report_path)],
                            env=dict(os.environ, CONTAINER_ENGINE="podman"),
                            capture_output=True, text=True, timeout=300)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr

    report = {**json.loads(report_path.read_text()), **image}
    assert report["exit_code"] == 0
    assert "0" not in report["process_uids"].split()
    out = ROOT / "artifacts" / "container-report.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def test_image_carries_no_build_tools_caches_or_tests(image):
    listing = subprocess.run(
        ["podman", "run", "--rm", "--user", "10001:10001", "--entrypoint", "sh", IMAGE, "-c",
         "ls /app /opt; ls /opt/venv/bin; find /opt /app \\( -name tests -o -name .cache -o -name '*.whl' \\) -print;"
         " find /app/webapp -name '*.pyc' | head -n 1; ls /run/secrets 2>/dev/null; find / -xdev -name ca.pem 2>/dev/null; true"],
        capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.split()
    assert "uv" not in lines and "pip" not in lines, lines       # no installers in the runtime
    assert "tests" not in lines and ".cache" not in " ".join(lines), lines
    assert "/opt/uv" not in listing.stdout                       # the uv bootstrap stayed in the builder
    assert "ca" not in lines and "ca.pem" not in listing.stdout   # the CA build secret left no trace
    assert any(line.endswith(".pyc") for line in lines), "webapp/ was not byte-compiled"
    labels = json.loads(subprocess.run(["podman", "image", "inspect", "--format", "{{json .Labels}}", IMAGE],
                                       capture_output=True, text=True, timeout=60).stdout)
    for key in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{key}" in labels
