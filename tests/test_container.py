"""Build the serving image with the real Dockerfile and run it as the cluster
would (ops/container-smoke.sh): non-root, read-only root filesystem, all
capabilities dropped, tmpfs /tmp, readiness, a prediction on loopback, a
graceful stop.

Builds on the local base image from ops/make-base-image.sh (no registry is
reachable here) with podman, from a fresh build context: the Dockerfile, the
lock, a model trained by this test session, and the wheel that
ops/build-image.sh builds from today's code. The result does not depend on
whatever the developer's artifacts/ or dist/ holds.

Image size and build time go to artifacts/container-report.json.
"""

import hashlib
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
# One tag per checkout: test runs in other worktrees on this machine do not
# replace the image this one is testing.
IMAGE = f"localhost/iris-classifier:test-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the Dockerfile copies from the context besides the model and the wheel,
# which the fixtures and ops/build-image.sh put there (tests/test_shipping.py
# checks that the .dockerignore allow-list admits the same paths).
CONTEXT_FILES = ["Dockerfile", ".dockerignore", "requirements.lock"]


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
    missing = [p for p in CONTEXT_FILES if not (ROOT / p).exists()]
    if missing:
        skip_or_fail(f"the build context is incomplete, missing: {', '.join(missing)}")
    context = tmp_path_factory.mktemp("context")
    for name in CONTEXT_FILES:
        shutil.copy2(ROOT / name, context / name)
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
    assert not (build_context / "dist").exists(), "ops/build-image.sh left its wheel in the context"
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
         " ls /run/secrets 2>/dev/null; find / -xdev -name ca.pem 2>/dev/null; true"],
        capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.split()
    assert "uv" not in lines and "pip" not in lines, lines       # no installers in the runtime
    assert "tests" not in lines and ".cache" not in " ".join(lines), lines
    assert not any(line.endswith(".whl") for line in lines), lines  # the wheel stayed in the builder
    assert "/opt/uv" not in listing.stdout                       # the uv bootstrap stayed in the builder
    assert "ca" not in lines and "ca.pem" not in listing.stdout   # the CA build secret left no trace
    labels = json.loads(subprocess.run(["podman", "image", "inspect", "--format", "{{json .Labels}}", IMAGE],
                                       capture_output=True, text=True, timeout=60).stdout)
    for key in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{key}" in labels


# Run in the image by its own interpreter: where the package is, whether every
# module has its bytecode, and whether the files it serves came with it.
PACKAGE_PROBE = """
import json, os, pathlib, iris_classifier
pkg = pathlib.Path(iris_classifier.__file__).parent
print(json.dumps({
    "package": str(pkg), "app": sorted(os.listdir("/app")),
    "modules": sorted(p.stem for p in pkg.glob("*.py")),
    "compiled": sorted(p.name.split(".")[0] for p in pkg.glob("__pycache__/*.pyc")),
    "data": sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")),
}))
"""


def test_image_runs_the_installed_wheel_byte_compiled(image):
    probe = subprocess.run(["podman", "run", "--rm", "--user", "10001:10001", "--read-only", "--entrypoint", "python",
                            IMAGE, "-c", PACKAGE_PROBE], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["package"].startswith("/opt/venv/lib/"), found["package"]
    assert found["app"] == ["artifacts"], found["app"]           # the model only: no source tree in /app
    assert {"granian_conf", "gunicorn_conf"} <= set(found["modules"]) and found["compiled"] == found["modules"], found
    for name in ("openapi.json", "templates/index.html", "static/app.js", "notebooks/05_model_training.ipynb"):
        assert name in found["data"], found["data"]
