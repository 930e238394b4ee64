"""The shipping files: linted and schema-validated offline, checked for what the
schemas cannot see (ops/check_pipeline.py), and the deploy and auth scripts run
against stand-in kubectl and gcloud commands. Fast: no network, no containers."""

import base64
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, skip_or_fail

sys.path.insert(0, str(ROOT / "ops"))
import check_pipeline  # noqa: E402

CONFIG = yaml.safe_load((ROOT / ".circleci" / "config.yml").read_text())
MANIFEST = list(yaml.safe_load_all((ROOT / "kubernetes-deployment.yaml").read_text()))
DOCKERFILE = (ROOT / "Dockerfile").read_text()
GRACEFUL_TIMEOUT = check_pipeline.GRACEFUL_TIMEOUT


def tool(name):
    "A validator from the project environment (installed next to this interpreter)."
    path = Path(sys.executable).parent / name
    if not path.exists():
        skip_or_fail(f"{name} is not installed in the project environment (make setup)")
    return str(path)


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120, **kw)


def test_dockerfile_passes_hadolint():
    result = run(tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifest_is_valid_for_current_kubernetes_strictly():
    result = run(tool("kubernetes-validate"), "--strict", "kubernetes-deployment.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 4, result.stdout


def test_circleci_config_matches_the_circleci_schema():
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.circle-ci", ".circleci/config.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pipeline_is_consistent():
    assert check_pipeline.pipeline_problems(CONFIG) == []


def test_cache_keys_hash_committed_files():
    text = (ROOT / ".circleci" / "config.yml").read_text()
    assert check_pipeline.cache_key_problems(text) == []
    assert check_pipeline.cache_key_problems('key: x-{{ checksum "no-such.lock" }}')


def test_manifest_matches_the_image():
    assert check_pipeline.manifest_problems(MANIFEST, DOCKERFILE, GRACEFUL_TIMEOUT) == []


def test_build_context_holds_what_the_dockerfile_copies():
    dockerignore = (ROOT / ".dockerignore").read_text()
    assert check_pipeline.dockerfile_problems(DOCKERFILE, dockerignore) == []
    assert check_pipeline.dockerfile_problems(DOCKERFILE + "COPY tests/ /app/tests/\n", dockerignore)


def test_check_script_passes():
    result = run(sys.executable, "ops/check_pipeline.py")
    assert result.returncode == 0, result.stdout + result.stderr


def _workflow_job(config, workflow, job):
    for entry in config["workflows"][workflow]["jobs"]:
        if isinstance(entry, dict) and job in entry:
            return entry[job]
    raise KeyError(job)


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: _workflow_job(c, "ship", "deploy").update(requires=["build"]), "not in the workflow"),
    (lambda c: _workflow_job(c, "ship", "build_and_push").update(requires=["test"]), "does not require train"),
    (lambda c: _workflow_job(c, "ship-with-approval", "deploy").update(requires=["train"]),
     "does not require build_and_push"),
    (lambda c: _workflow_job(c, "ship", "deploy").pop("filters"), "main only"),
    (lambda c: _workflow_job(c, "ship", "build_and_push").pop("context"), "no context"),
    (lambda c: c["jobs"]["train"].update(executor="python3"), "executor 'python3' is not defined"),
    (lambda c: c["jobs"]["deploy"]["steps"].insert(0, "gcloud-auth"), "'gcloud-auth' is neither"),
    (lambda c: c["commands"]["image-ref"]["steps"][0]["run"].update(
        command='echo "export IMAGE_REF=r/p/i:latest" >> "$BASH_ENV"'), "${CIRCLE_SHA1}"),
    (lambda c: c["jobs"]["train"]["steps"].__setitem__(2, {"run": "papermill nbs/x.ipynb out.ipynb"}),
     "does not run 'make train'"),
])
def test_pipeline_check_catches(mutate, expected):
    config = copy.deepcopy(CONFIG)
    mutate(config)
    problems = check_pipeline.pipeline_problems(config)
    assert any(expected in p for p in problems), problems


def _deployment(docs):
    return next(d for d in docs if d["kind"] == "Deployment")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: _deployment(d)["spec"].update(replicas=1), "must equal the HPA's minReplicas"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"]["containers"][0].update(image="r/i:latest"), "placeholder"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=1000), "runAsUser"),
    (lambda d: _deployment(d)["spec"]["template"]["metadata"]["labels"].update({"app.kubernetes.io/name": "x"}),
     "does not select"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].clear(), "/tmp"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=20), "terminationGracePeriodSeconds"),
])
def test_manifest_check_catches(mutate, expected):
    docs = copy.deepcopy(MANIFEST)
    mutate(docs)
    problems = check_pipeline.manifest_problems(docs, DOCKERFILE, GRACEFUL_TIMEOUT)
    assert any(expected in p for p in problems), problems


# ---- ops/deploy.sh and ops/gcp-auth.sh against recording stand-ins ----------

FAKE_KUBECTL = r"""#!/usr/bin/env bash
# Records its arguments; `apply -f` also keeps the manifest it was given.
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *"get deployment/iris-classifier -o jsonpath={.spec.replicas}"*) [[ -n "$FAKE_REPLICAS" ]] && echo "$FAKE_REPLICAS" || exit 1 ;;
  *"get deployment/iris-classifier -o jsonpath"*) [[ -n "$FAKE_REVISION" ]] && echo "$FAKE_REVISION" || exit 1 ;;
  *"apply -f"*) cp "${@: -1}" "$FAKE_APPLIED" ;;
  *"rollout status"*)
     n=$(grep -c "rollout status" "$FAKE_LOG")
     [[ "$FAKE_ROLLOUT" == ok || $n -gt 1 ]] || exit 1 ;;
esac
exit 0
"""


def _fake_command(tmp_path, name, script):
    "Put an executable `name` running `script` first on a PATH; returns that PATH"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / name).write_text(script)
    (bin_dir / name).chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


@pytest.fixture
def fake_kubectl(tmp_path):
    env = dict(os.environ, PATH=_fake_command(tmp_path, "kubectl", FAKE_KUBECTL), FAKE_LOG=str(tmp_path / "log"),
               FAKE_APPLIED=str(tmp_path / "applied.yaml"), FAKE_REVISION="3", FAKE_ROLLOUT="ok", FAKE_REPLICAS="",
               K8S_NAMESPACE="prod")

    def deploy(image, **overrides):
        result = run("bash", "ops/deploy.sh", image, env={**env, **overrides})
        log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
        applied = (tmp_path / "applied.yaml").read_text() if (tmp_path / "applied.yaml").exists() else ""
        return result, log, applied
    return deploy


IMAGE = "europe-west1-docker.pkg.dev/proj/repo/iris-classifier:" + "a" * 40


def test_deploy_applies_the_commit_image_and_waits(fake_kubectl):
    result, log, applied = fake_kubectl(IMAGE)
    assert result.returncode == 0, result.stderr
    assert f"image: {IMAGE}" in applied and "image: IMAGE_REF" not in applied
    assert [d["kind"] for d in yaml.safe_load_all(applied)] == [d["kind"] for d in MANIFEST]
    assert "--namespace prod rollout status deployment/iris-classifier --timeout=5m" in log
    assert "rollout undo" not in log


def test_deploy_keeps_a_higher_autoscaled_count(fake_kubectl):
    replicas = lambda applied: _deployment(list(yaml.safe_load_all(applied)))["spec"]["replicas"]
    assert replicas(fake_kubectl(IMAGE, FAKE_REPLICAS="5")[2]) == 5
    assert replicas(fake_kubectl(IMAGE, FAKE_REPLICAS="1")[2]) == 2  # never below the floor


def test_deploy_rolls_back_a_failed_rollout(fake_kubectl):
    result, log, _ = fake_kubectl(IMAGE, FAKE_ROLLOUT="fail")
    assert result.returncode == 1
    assert "rollout undo deployment/iris-classifier --to-revision=3" in log
    assert "rolling back to revision 3" in result.stderr


def test_deploy_without_a_previous_revision_only_fails(fake_kubectl):
    result, log, _ = fake_kubectl(IMAGE, FAKE_ROLLOUT="fail", FAKE_REVISION="")
    assert result.returncode == 1
    assert "rollout undo" not in log and "nothing to roll back" in result.stderr


@pytest.mark.parametrize("image", ["r/p/iris-classifier:latest", "r/p/iris-classifier", "host:5000/iris"])
def test_deploy_refuses_mutable_or_missing_tags(fake_kubectl, image):
    result, log, _ = fake_kubectl(image)
    assert result.returncode == 2 and log == ""


FAKE_GCLOUD = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
for a in "$@"; do
  case "$a" in --output-file=*) echo '{"type": "external_account"}' > "${a#--output-file=}" ;; esac
  case "$a" in --key-file=*) cp "${a#--key-file=}" "$FAKE_KEY_COPY" ;; esac
done
"""


@pytest.fixture
def fake_gcloud(tmp_path):
    path = _fake_command(tmp_path, "gcloud", FAKE_GCLOUD)
    home = tmp_path / "home"
    home.mkdir()
    base = {"PATH": path, "HOME": str(home), "FAKE_LOG": str(tmp_path / "log"),
            "FAKE_KEY_COPY": str(tmp_path / "key-copy"), "GCP_PROJECT_ID": "proj"}

    def auth(**env):
        result = run("bash", "ops/gcp-auth.sh", env={**base, **env})
        log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
        return result, log, home / ".config" / "iris-gcp"
    return auth


SECRET = "eyJhbGciOiJSUzI1NiJ9.secret-oidc-token.sig"


def test_gcp_auth_uses_workload_identity_federation_without_logging_the_token(fake_gcloud):
    provider = "projects/123/locations/global/workloadIdentityPools/circleci/providers/circleci"
    result, log, cred_dir = fake_gcloud(GCP_WIF_PROVIDER=provider, GCP_SERVICE_ACCOUNT="sa@proj.iam.gserviceaccount.com",
                                        CIRCLE_OIDC_TOKEN_V2=SECRET, GCP_SA_KEY="bm90LXVzZWQ=")
    assert result.returncode == 0, result.stderr
    assert f"iam workload-identity-pools create-cred-config {provider}" in log
    assert "auth login --cred-file=" in log and "activate-service-account" not in log
    assert "config set project proj" in log
    assert SECRET not in result.stdout + result.stderr + log
    token = cred_dir / "oidc-token"
    assert token.read_text() == SECRET and token.stat().st_mode & 0o077 == 0


def test_gcp_auth_falls_back_to_a_key_and_removes_it(fake_gcloud, tmp_path):
    key = json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----x"})
    result, log, cred_dir = fake_gcloud(GCP_SA_KEY=base64.b64encode(key.encode()).decode())
    assert result.returncode == 0, result.stderr
    assert "auth activate-service-account" in log
    assert (tmp_path / "key-copy").read_text() == key
    assert not (cred_dir / "key.json").exists()
    assert "PRIVATE KEY" not in result.stdout + result.stderr + log


def test_gcp_auth_without_credentials_fails_clearly(fake_gcloud):
    result, _, _ = fake_gcloud()
    assert result.returncode == 1 and "GCP_WIF_PROVIDER" in result.stderr


def test_shell_scripts_pass_shellcheck():
    if not shutil.which("shellcheck"):
        skip_or_fail("shellcheck is not installed (ops/install-container-tools.sh installs it)")
    result = run("shellcheck", *[str(s) for s in sorted((ROOT / "ops").glob("*.sh"))])
    assert result.returncode == 0, result.stdout
