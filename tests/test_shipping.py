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
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
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


def _replace_run(job, needle, command):
    "Replace the `run` step of `job` whose command contains `needle`"
    i = next(i for i, step in enumerate(job["steps"]) if needle in str(step))
    job["steps"][i] = {"run": command}


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
    (lambda c: _replace_run(c["jobs"]["train"], "ops/retrain.sh train", "papermill nbs/x.ipynb out.ipynb"),
     "does not run 'ops/retrain.sh train'"),
    # continuous training: the scheduled workflow and what keeps the others off the schedule
    (lambda c: c["workflows"]["retrain"].pop("when"), "no workflow for scheduled pipelines"),
    (lambda c: c["workflows"]["retrain"].update(when={"or": [c["workflows"]["retrain"]["when"], True]}),
     "workflow retrain: runs on scheduled pipelines too"),
    (lambda c: c["workflows"]["ship"]["when"]["and"].pop(2), "workflow ship: runs on scheduled pipelines too"),
    (lambda c: c["workflows"]["ship"]["when"]["and"].pop(),
     "workflow ship: runs on the deploy pipelines hand_over starts too"),
    (lambda c: c["workflows"].pop("deploy-retrained"), "no workflow for the deploy pipelines hand_over starts"),
    (lambda c: c["workflows"]["check"].pop("when"), "workflow check: runs on scheduled pipelines too"),
    (lambda c: _workflow_job(c, "deploy-retrained", "deploy").pop("requires"),
     "workflow deploy-retrained: deploy is not behind an approval job"),
    (lambda c: c["workflows"]["retrain"]["jobs"].append({"approve-deploy": {"type": "approval",
                                                                            "requires": ["hand_over"]}}),
     "workflow retrain: approves or deploys itself"),
    (lambda c: c["workflows"]["deploy-retrained"]["jobs"].append({"build_and_push": {"requires": ["approve-deploy"]}}),
     "workflow deploy-retrained: runs build_and_push"),
    (lambda c: _workflow_job(c, "retrain", "build_and_push").pop("retrained"),
     "build_and_push does not pass retrained: true"),
    (lambda c: _workflow_job(c, "deploy-retrained", "deploy").pop("handed_over"),
     "deploy does not pass handed_over: true"),
    (lambda c: _workflow_job(c, "retrain", "hand_over").pop("requires"), "hand_over does not require build_and_push"),
    (lambda c: c["jobs"]["hand_over"]["steps"].pop(2), "job hand_over: does not stop before authenticating"),
    (lambda c: _replace_run(c["jobs"]["hand_over"], "ops/retrain.sh hand-over", "echo deploy later"),
     "does not run 'ops/retrain.sh hand-over'"),
    (lambda c: _workflow_job(c, "retrain", "retrain").pop("requires"), "retrain does not require fetch_production"),
    (lambda c: _workflow_job(c, "retrain", "fetch_production").pop("context"),
     "fetch_production uses a bucket but has no context"),
    (lambda c: _workflow_job(c, "ship", "champion").pop("context"),
     "workflow ship: champion uses a bucket but has no context"),
    (lambda c: _workflow_job(c, "retrain", "fetch_production").pop("filters"), "does not run on main only"),
    (lambda c: _workflow_job(c, "ship-with-approval", "train").update(requires=["test"]),
     "workflow ship-with-approval: train does not require champion"),
    (lambda c: _workflow_job(c, "ship", "train").pop("champion"), "train does not pass champion: true"),
    (lambda c: _workflow_job(c, "check", "docs").update(requires=["test"]),
     "workflow check: docs does not require train"),
    (lambda c: c["jobs"]["deploy"]["steps"].insert(3, {"run": "bash ops/champion.sh upload artifacts/model"}),
     "uploads the champion before the rollout"),
    (lambda c: c["jobs"]["build_and_push"]["steps"].pop(2), "job build_and_push: does not stop before authenticating"),
    (lambda c: _replace_run(c["jobs"]["deploy"], "ops/champion.sh check", "echo no check"),
     "job deploy: does not run 'ops/champion.sh check'"),
    (lambda c: c["jobs"]["deploy"]["steps"].append({"run": "bash ops/champion.sh check artifacts/model"})
     or _replace_run(c["jobs"]["deploy"], "May this model", "echo later"), "checks the champion after the rollout"),
    (lambda c: c["jobs"]["champion"]["steps"].remove("jq"),
     "job champion: runs an ops script that reads JSON with jq, without the jq step"),
    (lambda c: _replace_run(c["jobs"]["champion"], "ops/retrain.sh in-force", "bash ops/champion.sh fetch x"),
     "job champion: does not run 'ops/retrain.sh in-force'"),
    (lambda c: c["jobs"]["champion"]["steps"].remove("cluster-credentials"),
     "job champion: does not use the cluster-credentials command"),
    (lambda c: c["jobs"]["fetch_production"]["steps"].remove("cluster-credentials"),
     "job fetch_production: does not use the cluster-credentials command"),
    (lambda c: _workflow_job(c, "retrain", "fetch_production").pop("requires"),
     "workflow retrain: fetch_production does not require test"),
    (lambda c: c["commands"]["halt-unless-retrained"]["steps"][0]["run"]
               .update(command="bash ops/retrain.sh decision || true"),
     "command halt-unless-retrained"),
])
def test_pipeline_check_catches(mutate, expected):
    config = copy.deepcopy(CONFIG)
    mutate(config)
    problems = check_pipeline.pipeline_problems(config)
    assert any(expected in p for p in problems), problems


SCHEDULED = {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]}


@pytest.mark.parametrize("when, role", [
    (SCHEDULED, "scheduled"),
    ({"equal": SCHEDULED["equal"][::-1]}, "scheduled"),
    ({"and": [{"equal": ["main", "<< pipeline.git.branch >>"]}, SCHEDULED]}, "scheduled"),
    ({"not": SCHEDULED}, "excluded"),
    ({"and": [True, {"not": SCHEDULED}]}, "excluded"),
    ({"or": [SCHEDULED, True]}, "both"),
    ({"not": {"and": [SCHEDULED]}}, "both"),
    (None, "both"),
])
def test_schedule_role(when, role):
    assert check_pipeline.schedule_role(when) == role


def test_each_workflow_has_its_trigger():
    roles = {name: check_pipeline.schedule_role(w.get("when")) for name, w in CONFIG["workflows"].items()}
    assert roles == {"check": "excluded", "ship": "excluded", "ship-with-approval": "excluded", "retrain": "scheduled",
                     "deploy-retrained": "excluded"}
    handed = {name: check_pipeline.hand_over_role(w.get("when")) for name, w in CONFIG["workflows"].items()}
    assert handed == {"check": "never", "ship": "never", "ship-with-approval": "never", "retrain": "both",
                      "deploy-retrained": "only"}


def _deployment(docs):
    return next(d for d in docs if d["kind"] == "Deployment")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: _deployment(d)["spec"].update(replicas=1), "must equal the HPA's minReplicas"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"]["containers"][0].update(image="r/i:latest"), "placeholder"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=1000), "runAsUser"),
    (lambda d: _deployment(d)["spec"]["template"]["metadata"]["labels"].update({"app.kubernetes.io/name": "x"}),
     "does not select"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].clear(), "/tmp"),
    (lambda d: _deployment(d)["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=20),
     "terminationGracePeriodSeconds"),
    (lambda d: _deployment(d)["spec"]["template"]["metadata"].pop("annotations"), "iris-classifier/model-version"),
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
  *"get deployment/iris-classifier -o jsonpath={.spec.replicas}"*)
     [[ -n "$FAKE_REPLICAS" ]] && echo "$FAKE_REPLICAS" || exit 1 ;;
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
    model = tmp_path/"model"
    model.mkdir()
    (model/"metadata.json").write_text(json.dumps({"model_version": DEPLOYED}))

    def deploy(image, *model_dir, **overrides):
        result = run("bash", "ops/deploy.sh", image, *(model_dir or [str(model)]), env={**env, **overrides})
        log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
        applied = (tmp_path / "applied.yaml").read_text() if (tmp_path / "applied.yaml").exists() else ""
        return result, log, applied
    return deploy


IMAGE = "europe-west1-docker.pkg.dev/proj/repo/iris-classifier:" + "a" * 40
DEPLOYED = "20261202T080000Z-00c0ffee"


def test_deploy_names_the_model_on_the_pod_template(fake_kubectl, tmp_path):
    result, _, applied = fake_kubectl(IMAGE)
    assert result.returncode == 0, result.stderr
    template = _deployment(list(yaml.safe_load_all(applied)))["spec"]["template"]
    assert template["metadata"]["annotations"] == {"iris-classifier/model-version": DEPLOYED}
    result, log, _ = fake_kubectl(IMAGE, str(tmp_path/"no-model"))
    assert result.returncode == 2 and "no published model" in result.stderr and log.count("apply") == 1


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
    result, log, cred_dir = fake_gcloud(GCP_WIF_PROVIDER=provider,
                                        GCP_SERVICE_ACCOUNT="sa@proj.iam.gserviceaccount.com",
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


# ---- ops/retrain.sh and ops/champion.sh against a stand-in gcloud (buckets are directories) and iris-classifier ----

FAKE_STORAGE = r"""#!/usr/bin/env bash
# `gcloud storage ls|rsync|cp|cat|objects describe` on directories: gs://BUCKET/PATH is $FAKE_GCS/BUCKET/PATH. An
# object's generation is kept in $FAKE_GCS.gen/BUCKET/PATH (1 for one the test wrote itself); each write makes a
# new one, and `cp --if-generation-match=G` fails as Cloud Storage does when the object's is not G (0: absent).
# FAKE_RACE=NAME: another writer replaces the object NAME just before a `cp` to it.
echo "$*" >> "$FAKE_LOG"
local_path() { if [[ $1 == gs://* ]]; then echo "$FAKE_GCS/${1#gs://}"; else echo "$1"; fi; }
gen_file() { echo "$FAKE_GCS.gen/${1#"$FAKE_GCS"/}"; }
generation() {
  if [[ ! -f $1 ]]; then echo 0; elif [[ -f $(gen_file "$1") ]]; then cat "$(gen_file "$1")"; else echo 1; fi
}
write() { # SRC DST
  mkdir -p "$(dirname "$2")" && cp "$1" "$2"
  [[ $2 == "$FAKE_GCS"/* ]] || return 0
  local n=$(( $(cat "$FAKE_GCS.counter" 2>/dev/null || echo 100) + 1 ))
  echo "$n" > "$FAKE_GCS.counter"
  mkdir -p "$(dirname "$(gen_file "$2")")" && echo "$n" > "$(gen_file "$2")"
}
[[ $1 == storage ]] || exit 1
case $2 in
  ls)
    dir=$(local_path "$3")
    [[ -d $dir ]] || { echo "ERROR: $3 not found" >&2; exit 1; }
    for f in "$dir"/*; do
      [[ -e $f ]] || continue
      [[ -d $f ]] && echo "${3%/}/${f##*/}/" || echo "${3%/}/${f##*/}"
    done ;;
  rsync)
    src=$(local_path "${@: -2:1}"); dst=$(local_path "${@: -1}")
    [[ -d $src ]] || { echo "ERROR: $src not found" >&2; exit 1; }
    exclude=""; for a in "$@"; do [[ $a == --exclude=* ]] && exclude=${a#--exclude=}; done
    [[ " $* " == *" --delete-unmatched-destination-objects "* ]] && rm -rf "$dst"
    mkdir -p "$dst"
    (cd "$src" && find . -type f | sed 's|^\./||') | while read -r rel; do
      [[ -n $exclude ]] && grep -qE "$exclude" <<<"$rel" && continue
      write "$src/$rel" "$dst/$rel"
    done ;;
  cp)
    src=$(local_path "${@: -2:1}"); dst=$(local_path "${@: -1}")
    [[ -n ${FAKE_RACE:-} && $dst == */"$FAKE_RACE" ]] && write "$dst" "$dst"
    for a in "$@"; do
      [[ $a == --if-generation-match=* && ${a#*=} != "$(generation "$dst")" ]] &&
        { echo "ERROR: HTTPError 412: At least one of the pre-conditions you specified did not hold." >&2; exit 1; }
    done
    write "$src" "$dst" ;;
  cat) cat "$(local_path "$3")" ;;
  objects)
    [[ $3 == describe && $5 == --format=value\(generation\) ]] || exit 1
    [[ -f $(local_path "$4") ]] || { echo "ERROR: $4 not found" >&2; exit 1; }
    generation "$(local_path "$4")" ;;
  *) exit 1 ;;
esac
"""

FAKE_IRIS = r"""#!/usr/bin/env bash
# iris-classifier: `monitor` notes the model it judges and exits $FAKE_MONITOR; `train` exits $FAKE_TRAIN and, on
# 0, publishes a new model over the one in force (a history entry naming it); `rollback V --model-dir D` puts the
# archived V back in force in D, with its history entry.
echo "iris-classifier $*" >> "$FAKE_LOG"
model=$IRIS_ARTIFACTS_DIR/model
in_force() { [[ -f $model/metadata.json ]] && jq -r .model_version "$model/metadata.json"; }
case $1 in
  monitor) echo "monitored model $(in_force)" >> "$FAKE_LOG"; exit "${FAKE_MONITOR:-0}" ;;
  train)
    if [[ ${FAKE_TRAIN:-0} == 0 ]]; then
      mkdir -p "$model"
      printf '{"model_version": "%s", "previous": "%s"}\n' "$NEW_VERSION" "$(in_force)" >> "$model/history.jsonl"
      printf '{\n  "model_version": "%s"\n}\n' "$NEW_VERSION" > "$model/metadata.json"
    fi
    exit "${FAKE_TRAIN:-0}" ;;
  rollback)
    [[ $3 == --model-dir && -f $4/versions/$2/metadata.json ]] || exit 1
    printf '{"model_version": "%s", "previous": "%s", "why": "rolled back"}\n' "$2" "$(in_force)" >> "$4/history.jsonl"
    cp "$4/versions/$2/metadata.json" "$4/metadata.json"
    exit 0 ;;
esac
exit 2
"""

FAKE_CLUSTER = r"""#!/usr/bin/env bash
# kubectl get deployment/iris-classifier --ignore-not-found -o json: a Deployment whose pod template names model
# $FAKE_IN_FORCE (no annotation if empty); FAKE_CLUSTER=down: the cluster cannot be reached; =empty: no Deployment.
echo "kubectl $*" >> "$FAKE_LOG"
[[ ${FAKE_CLUSTER:-up} != down ]] || { echo "Unable to connect to the server" >&2; exit 1; }
[[ $* == *"get deployment/iris-classifier --ignore-not-found -o json" ]] || exit 1
[[ ${FAKE_CLUSTER:-up} == up ]] || exit 0
jq -n --arg v "$FAKE_IN_FORCE" '{spec: {template: {metadata: {annotations: (if $v == "" then {} else
  {"iris-classifier/model-version": $v} end)}}}}'
"""

CHAMPION, NEW_VERSION = "20261101T000000Z-c4a5e1d0", "20261201T063000Z-0badcafe"
OLDER = "20261015T000000Z-01d01d01"  # the champion before CHAMPION, still in its archive


@pytest.fixture
def ct(tmp_path):
    ("Run ops/retrain.sh or ops/champion.sh with stand-ins, a records bucket with one file and a model bucket "
     "holding a champion")
    path = _fake_command(tmp_path, "gcloud", FAKE_STORAGE)
    (tmp_path/"bin"/"iris-classifier").write_text(FAKE_IRIS)
    (tmp_path/"bin"/"iris-classifier").chmod(0o755)
    (tmp_path/"bin"/"kubectl").write_text(FAKE_CLUSTER)
    (tmp_path/"bin"/"kubectl").chmod(0o755)
    for day in ("2026/11/30", "2026/11/20"):
        records = tmp_path/"gcs"/"records-bucket"/"iris-records"/day
        records.mkdir(parents=True)
        (records/"06:00:00_06:59:59_S0.json").write_text(
            '{"jsonPayload": {"kind": "prediction"}}\n{"jsonPayload": {"kind": "feedback"}}\n')
    model = tmp_path/"gcs"/"model-bucket"/"model"
    (model/"versions"/OLDER).mkdir(parents=True)
    (model/"versions"/OLDER/"metadata.json").write_text(json.dumps({"model_version": OLDER}))
    (model/"metadata.json").write_text(json.dumps({"model_version": CHAMPION}, indent=2))
    (model/"history.jsonl").write_text(json.dumps({"model_version": OLDER, "previous": None}) + "\n"
                                       + json.dumps({"model_version": CHAMPION, "previous": OLDER}) + "\n")
    base = {"PATH": path, "HOME": str(tmp_path), "FAKE_LOG": str(tmp_path/"log"), "FAKE_GCS": str(tmp_path/"gcs"),
            "IRIS_CLASSIFIER": str(tmp_path/"bin"/"iris-classifier"), "IRIS_ARTIFACTS_DIR": str(tmp_path/"artifacts"),
            "RECORDS_BUCKET": "records-bucket", "MODEL_BUCKET": "model-bucket", "NEW_VERSION": NEW_VERSION,
            "FAKE_IN_FORCE": CHAMPION, "RETRAIN_NOW": "2026-12-01T06:00:00Z"}

    def script(name, *args, **env):
        env = {k: v for k, v in {**base, **env}.items() if v is not None}
        result = run("bash", f"ops/{name}.sh", *args, env=env)
        log = (tmp_path/"log").read_text() if (tmp_path/"log").exists() else ""
        (tmp_path/"log").unlink(missing_ok=True)
        return result, log
    script.tmp = tmp_path
    return script


@pytest.fixture
def fetched(ct):
    "The scheduled pipeline's workspace after fetch_production: returns its directory"
    result, _ = ct("retrain", "fetch", str(ct.tmp/"production"))
    assert result.returncode == 0, result.stderr
    return ct.tmp/"production"


def _version(model_dir):
    return json.loads((model_dir/"metadata.json").read_text())["model_version"]


def test_retrain_fetch_brings_records_and_the_champion(ct):
    result, log = ct("retrain", "fetch", str(ct.tmp/"production"))
    assert result.returncode == 0, result.stderr
    assert (ct.tmp/"production"/"records"/"iris-records"/"2026"/"11"/"30"/"06:00:00_06:59:59_S0.json").exists()
    assert _version(ct.tmp/"production"/"champion") == CHAMPION
    assert (ct.tmp/"production"/"champion"/"history.jsonl").exists()
    assert "storage rsync --recursive gs://records-bucket" in log and "gs://model-bucket/model" in log
    assert "1 file(s) of records" in result.stdout


def _fetched_days(production):
    return sorted(str(p.relative_to(production/"records")) for p in (production/"records").glob("*/*/*/*"))


@pytest.mark.parametrize("since, now, days", [
    ("7d", "2026-12-01T06:00:00Z", ["iris-records/2026/11/30"]),
    ("12h", "2026-12-01T06:00:00Z", ["iris-records/2026/11/30"]),
    ("6h", "2026-12-01T06:00:00Z", []),
    ("2026-11-20", "2026-12-01T06:00:00Z", ["iris-records/2026/11/20", "iris-records/2026/11/30"]),
    ("14d", "2026-11-30T23:59:59Z", ["iris-records/2026/11/20", "iris-records/2026/11/30"]),
    ("1d", "2026-11-21T00:00:00Z", ["iris-records/2026/11/20"]),
])
def test_retrain_fetch_copies_only_the_days_the_window_needs(ct, since, now, days):
    result, log = ct("retrain", "fetch", str(ct.tmp/"production"), MONITOR_SINCE=since, RETRAIN_NOW=now)
    assert result.returncode == 0, result.stderr
    assert _fetched_days(ct.tmp/"production") == days
    assert "rsync --recursive gs://records-bucket " not in log  # never the whole bucket
    assert (ct.tmp/"production"/"until").read_text().strip() == now


def test_retrain_fetch_refuses_a_window_it_cannot_read(ct):
    result, _ = ct("retrain", "fetch", str(ct.tmp/"production"), MONITOR_SINCE="a week")
    assert result.returncode == 2 and "MONITOR_SINCE 'a week' is not a duration" in result.stderr


def test_monitor_judges_the_window_fetch_copied(ct, fetched):
    result, log = ct("retrain", "run", str(fetched), RETRAIN_NOW="2030-01-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    assert "--since 7d --until 2026-12-01T06:00:00Z" in log


def test_retrain_fetch_notes_the_model_the_cluster_serves(ct):
    result, log = ct("retrain", "fetch", str(ct.tmp/"production"), FAKE_IN_FORCE=OLDER, K8S_NAMESPACE="prod")
    assert result.returncode == 0, result.stderr
    assert (ct.tmp/"production"/"in-force").read_text().strip() == OLDER
    assert f"the cluster serves model {OLDER}" in result.stdout
    assert "kubectl --namespace prod get deployment/iris-classifier --ignore-not-found -o json" in log
    result, log = ct("retrain", "fetch", str(ct.tmp/"elsewhere"), FAKE_CLUSTER="down")
    assert result.returncode == 1 and "the model in force is unknown" in result.stderr and "gcloud" not in log
    assert not (ct.tmp/"elsewhere").exists()


def test_after_a_rollout_undo_retrain_judges_and_builds_on_the_model_in_force(ct):
    assert ct("retrain", "fetch", str(ct.tmp/"production"), FAKE_IN_FORCE=OLDER)[0].returncode == 0
    result, log = ct("retrain", "run", str(ct.tmp/"production"), FAKE_MONITOR="3")
    assert result.returncode == 0, result.stderr
    assert f"the cluster serves model {OLDER}, not the champion {CHAMPION}" in result.stdout
    steps = [log.index(step)
             for step in (f"rollback {OLDER} --model-dir", "iris-classifier monitor", "iris-classifier train")]
    assert steps == sorted(steps)
    assert f"monitored model {OLDER}" in log
    history = [json.loads(line) for line in (ct.tmp/"artifacts"/"model"/"history.jsonl").read_text().splitlines()]
    assert [(e["model_version"], e["previous"]) for e in history[-2:]] == [(OLDER, CHAMPION), (NEW_VERSION, OLDER)]
    check, _ = ct("champion", "check", str(ct.tmp/"artifacts"/"model"))  # its deploy brings the bucket in line
    assert check.returncode == 0, check.stderr


def test_push_training_after_a_rollout_undo_builds_on_the_model_in_force(ct, fetched):
    result, log = ct("retrain", "in-force", str(fetched/"in-force"), FAKE_IN_FORCE=OLDER)  # the champion job's note
    assert result.returncode == 0 and (fetched/"in-force").read_text().strip() == OLDER
    assert log.strip() == "kubectl get deployment/iris-classifier --ignore-not-found -o json"
    result, log = ct("retrain", "train", "--champion", str(fetched/"champion"), "--min-accuracy", "0.9", FAKE_TRAIN="4")
    assert result.returncode == 0, result.stderr
    assert f"rollback {OLDER} --model-dir" in log and _version(ct.tmp/"artifacts"/"model") == OLDER  # refused: it stays
    check, _ = ct("champion", "check", str(ct.tmp/"artifacts"/"model"))  # its redeploy brings the bucket in line
    assert check.returncode == 0 and f"model {OLDER} may replace the champion {CHAMPION}" in check.stdout
    result, log = ct("retrain", "in-force", str(fetched/"in-force"), FAKE_CLUSTER="down")
    assert result.returncode == 1 and "the model in force is unknown" in result.stderr


def test_a_cluster_serving_the_champion_or_naming_none_changes_nothing(ct):
    for in_force, cluster, said in ((CHAMPION, "up", f"the cluster serves model {CHAMPION}"),
                                    ("", "up", "names no model version"),
                                    (CHAMPION, "empty", "no Deployment, or one that names no model version "
                                     "(deployed before ops/deploy.sh set it): following the champion")):
        fetch, _ = ct("retrain", "fetch", str(ct.tmp/"p"), FAKE_IN_FORCE=in_force, FAKE_CLUSTER=cluster)
        assert fetch.returncode == 0 and said in fetch.stdout
        result, log = ct("retrain", "run", str(ct.tmp/"p"), FAKE_MONITOR="0")
        assert result.returncode == 0 and "rollback" not in log and f"monitored model {CHAMPION}" in log


def test_not_enough_data_trains_nothing_and_stays_green(ct, fetched):
    result, log = ct("retrain", "run", str(fetched), FAKE_MONITOR="4")
    assert result.returncode == 0, result.stderr
    assert "not enough records in the window" in result.stdout and "iris-classifier train" not in log
    assert ct("retrain", "decision")[0].returncode == 1


def test_a_failed_monitoring_notebook_fails_the_job(ct, fetched):
    result, log = ct("retrain", "run", str(fetched), FAKE_MONITOR="1")
    assert result.returncode == 1 and "its notebook failed" in result.stderr and "iris-classifier train" not in log


@pytest.mark.parametrize("missing", ["RECORDS_BUCKET", "MODEL_BUCKET"])
def test_retrain_fetch_without_a_bucket_fails_clearly(ct, missing):
    result, log = ct("retrain", "fetch", str(ct.tmp/"production"), **{missing: None})
    assert result.returncode == 2 and f"set {missing}" in result.stderr
    assert log == ""  # nothing fetched at all


def test_retrain_fetch_without_a_champion_fails(ct):
    shutil.rmtree(ct.tmp/"gcs"/"model-bucket"/"model")
    result, _ = ct("retrain", "fetch", str(ct.tmp/"production"))
    assert result.returncode == 1 and "deploy once from main" in result.stderr


def test_no_drift_trains_nothing_and_deploys_nothing(ct, fetched):
    result, log = ct("retrain", "run", str(fetched), "--min-accuracy", "0.9", FAKE_MONITOR="0")
    assert result.returncode == 0, result.stderr
    assert f"iris-classifier monitor --records {fetched}/records --since 7d" in log
    assert "iris-classifier train" not in log
    assert _version(ct.tmp/"artifacts"/"model") == CHAMPION  # the champion, as monitored
    assert "nothing to deploy" in (ct.tmp/"artifacts"/"retrain"/"outcome.txt").read_text()
    decision, _ = ct("retrain", "decision")
    assert decision.returncode == 1 and "nothing to build or deploy" in decision.stderr


@pytest.mark.parametrize("monitor, force", [("3", "false"), ("0", "true"), ("2", "true")])
def test_drift_or_force_trains_with_feedback_and_decides_to_deploy(ct, fetched, monitor, force):
    result, log = ct("retrain", "run", str(fetched), "--min-accuracy", "0.9", FAKE_MONITOR=monitor, FORCE_RETRAIN=force)
    assert result.returncode == 0, result.stderr
    assert f"iris-classifier train --min-accuracy 0.9 --with-feedback {fetched}/records" in log
    decision, _ = ct("retrain", "decision")
    assert decision.returncode == 0 and decision.stdout.strip() == NEW_VERSION


def test_drift_without_feedback_trains_on_the_data_alone(ct, fetched):
    records = fetched/"records"/"iris-records"/"2026"/"11"/"30"/"06:00:00_06:59:59_S0.json"
    records.write_text('{"jsonPayload": {"kind": "prediction"}}\n')
    result, log = ct("retrain", "run", str(fetched), FAKE_MONITOR="3")
    assert result.returncode == 0, result.stderr
    assert "iris-classifier train" in log and "--with-feedback" not in log
    assert "no feedback in the records" in result.stdout
    assert ct("retrain", "decision")[0].stdout.strip() == NEW_VERSION


def test_a_refused_challenger_is_no_failure_and_nothing_to_deploy(ct, fetched):
    result, log = ct("retrain", "run", str(fetched), FAKE_MONITOR="3", FAKE_TRAIN="4")
    assert result.returncode == 0, result.stderr
    assert "iris-classifier train" in log and f"champion {CHAMPION} stays" in result.stdout
    assert ct("retrain", "decision")[0].returncode == 1


@pytest.mark.parametrize("train", ["1", "2"])
def test_failed_training_fails_the_job(ct, fetched, train):
    result, _ = ct("retrain", "run", str(fetched), FAKE_MONITOR="3", FAKE_TRAIN=train)
    assert result.returncode == int(train) and "training failed" in result.stderr
    assert ct("retrain", "decision")[0].returncode == 1


def test_monitoring_that_cannot_judge_fails_unless_forced(ct, fetched):
    result, log = ct("retrain", "run", str(fetched), FAKE_MONITOR="2")
    assert result.returncode == 2 and "could not judge" in result.stderr and "train" not in log


def test_an_earlier_decision_does_not_linger(ct, fetched):
    assert ct("retrain", "run", str(fetched), FAKE_MONITOR="3")[0].returncode == 0
    assert ct("retrain", "run", str(fetched), FAKE_MONITOR="0")[0].returncode == 0
    assert ct("retrain", "decision")[0].returncode == 1


def test_retrain_run_checks_its_inputs(ct, fetched):
    result, log = ct("retrain", "run", str(fetched), FORCE_RETRAIN="yes")
    assert result.returncode == 2 and "FORCE_RETRAIN must be true or false" in result.stderr and log == ""
    result, log = ct("retrain", "run", str(ct.tmp/"nowhere"))
    assert result.returncode == 2 and "ops/retrain.sh fetch puts them there" in result.stderr and log == ""


def test_ci_training_uses_the_champion_and_accepts_a_refusal(ct, fetched):
    result, log = ct("retrain", "train", "--champion", str(fetched/"champion"), "--min-accuracy", "0.9", FAKE_TRAIN="4")
    assert result.returncode == 0, result.stderr
    assert log.strip() == "iris-classifier train --min-accuracy 0.9"
    assert _version(ct.tmp/"artifacts"/"model") == CHAMPION and f"against the champion {CHAMPION}" in result.stdout
    result, _ = ct("retrain", "train", "--champion", str(ct.tmp/"no-champion"))  # a branch: no champion job ran
    assert result.returncode == 0 and "no champion in" in result.stdout
    assert f"challenger {NEW_VERSION} published" in result.stdout
    assert ct("retrain", "train", FAKE_TRAIN="1")[0].returncode == 1


def test_champion_without_a_bucket_is_a_no_op(ct):
    for args in (["fetch", str(ct.tmp/"m")], ["upload", str(ct.tmp/"m")]):
        result, log = ct("champion", *args, MODEL_BUCKET=None)
        assert result.returncode == 0 and "MODEL_BUCKET is not set" in result.stdout and log == ""
    assert not (ct.tmp/"m").exists()
    result, _ = ct("champion", "fetch", "--required", str(ct.tmp/"m"), MODEL_BUCKET=None)
    assert result.returncode == 2 and "set MODEL_BUCKET" in result.stderr


def _trained_from(champion, dest, version=NEW_VERSION):
    "A model published over a copy of `champion` into `dest`, as `iris-classifier train` leaves it"
    shutil.copytree(champion, dest)
    (dest/"metadata.json").write_text(json.dumps({"model_version": version}, indent=2))
    (dest/f"model-{version}.skops").write_text("model")
    (dest/"versions"/version).mkdir(parents=True)
    (dest/"versions"/version/"metadata.json").write_text(json.dumps({"model_version": version}))
    previous = _version(champion)
    with (dest/"history.jsonl").open("a") as f:
        f.write(json.dumps({"model_version": version, "previous": previous}) + "\n")
    return dest


def _bucket(ct):
    "Every file of the model bucket and its content"
    root = ct.tmp/"gcs"/"model-bucket"
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_champion_upload_adds_the_model_and_replaces_the_champion_only_where_it_was(ct, fetched):
    deployed = _trained_from(fetched/"champion", ct.tmp/"artifacts"/"model")
    (ct.tmp/"gcs"/"model-bucket"/"model"/"model-old.skops").write_text("an older model's file")
    result, log = ct("champion", "upload", str(deployed))
    assert result.returncode == 0, result.stderr
    assert f"model {NEW_VERSION} is the champion in gs://model-bucket/model/" in result.stdout
    remote = ct.tmp/"gcs"/"model-bucket"/"model"
    assert _version(remote) == NEW_VERSION and _version(remote/"versions"/NEW_VERSION) == NEW_VERSION
    assert (remote/"history.jsonl").read_text() == (deployed/"history.jsonl").read_text()
    assert (remote/"model-old.skops").exists()  # nothing is deleted
    assert "--delete-unmatched-destination-objects" not in log
    assert f"cp --if-generation-match=1 {deployed}/history.jsonl gs://model-bucket/model/history.jsonl" in log
    assert f"cp --if-generation-match=1 {deployed}/metadata.json gs://model-bucket/model/metadata.json" in log
    result, _ = ct("champion", "upload", str(ct.tmp/"empty"))
    assert result.returncode == 1 and "not a published model" in result.stderr


def test_a_stale_deploy_fails_and_leaves_the_newer_champion(ct, fetched):
    newer = _trained_from(fetched/"champion", ct.tmp/"other-pipeline", "20261201T050000Z-0e0e0e0e")
    assert ct("champion", "upload", str(newer))[0].returncode == 0  # another pipeline deployed first
    before = _bucket(ct)
    stale = _trained_from(fetched/"champion", ct.tmp/"artifacts"/"model")  # trained against the older champion
    for command in ("check", "upload"):
        result, log = ct("champion", command, str(stale))
        assert result.returncode == 3, result.stderr
        assert f"stale: model {NEW_VERSION} was not made from the champion 20261201T050000Z-0e0e0e0e" in result.stderr
        assert " cp " not in f" {log}" and "rsync" not in log
    assert _bucket(ct) == before


def test_a_deploy_of_a_model_made_from_the_newer_champion_passes_the_check(ct, fetched):
    newer = _trained_from(fetched/"champion", ct.tmp/"other-pipeline", "20261201T050000Z-0e0e0e0e")
    assert ct("champion", "upload", str(newer))[0].returncode == 0
    later = _trained_from(newer, ct.tmp/"artifacts"/"model")
    result, log = ct("champion", "check", str(later))
    assert result.returncode == 0 and "may replace the champion 20261201T050000Z-0e0e0e0e" in result.stdout
    assert "rsync" not in log and " cp " not in f" {log}"  # check writes nothing
    assert ct("champion", "upload", str(later))[0].returncode == 0
    assert _version(ct.tmp/"gcs"/"model-bucket"/"model") == NEW_VERSION


@pytest.mark.parametrize("race", ["history.jsonl", "metadata.json"])
def test_a_champion_replaced_during_the_upload_is_not_overwritten(ct, fetched, race):
    deployed = _trained_from(fetched/"champion", ct.tmp/"artifacts"/"model")
    result, _ = ct("champion", "upload", str(deployed), FAKE_RACE=race)
    assert result.returncode == 3 and f"gs://model-bucket/model/{race} changed while uploading" in result.stderr
    assert _version(ct.tmp/"gcs"/"model-bucket"/"model") == CHAMPION


def test_the_first_champion_needs_an_empty_place_and_a_redeploy_writes_nothing(ct, fetched):
    shutil.rmtree(ct.tmp/"gcs"/"model-bucket"/"model")
    first = ct.tmp/"first"
    first.mkdir()
    (first/"metadata.json").write_text(json.dumps({"model_version": CHAMPION}))
    (first/"history.jsonl").write_text(json.dumps({"model_version": CHAMPION, "previous": None}) + "\n")
    result, log = ct("champion", "upload", str(first))
    assert result.returncode == 0, result.stderr
    assert "cp --if-generation-match=0" in log and _version(ct.tmp/"gcs"/"model-bucket"/"model") == CHAMPION
    result, log = ct("champion", "upload", str(first))
    assert result.returncode == 0 and "already the champion" in result.stdout
    assert "rsync" not in log and " cp " not in log


def test_champion_fetch_tells_an_empty_bucket_from_an_unreadable_one(ct):
    shutil.rmtree(ct.tmp/"gcs"/"model-bucket"/"model")
    result, _ = ct("champion", "fetch", str(ct.tmp/"m"))
    assert result.returncode == 0 and "no champion in gs://model-bucket/model/ yet" in result.stdout
    assert not (ct.tmp/"m").exists()
    result, _ = ct("champion", "fetch", str(ct.tmp/"m"), MODEL_BUCKET="no-such-bucket")
    assert result.returncode != 0 and "not found" in result.stderr


@pytest.fixture
def circleci_api():
    ("A stand-in for CircleCI's API on loopback: records each request, and answers as its trigger-a-pipeline "
     "endpoint does")
    calls = []

    class Handler(BaseHTTPRequestHandler):
        status = 201

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append((self.path, self.headers["Circle-Token"], body))
            answer = {"number": 42, "state": "created"} if self.status == 201 else {"message": "Permission denied"}
            reply = json.dumps(answer).encode()
            self.send_response(self.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", calls, Handler
    server.shutdown()


def test_hand_over_stages_the_model_and_starts_its_deploy_pipeline(ct, fetched, circleci_api):
    url, calls, _ = circleci_api
    assert ct("retrain", "run", str(fetched), FAKE_MONITOR="3")[0].returncode == 0
    image = f"r/p/iris-classifier:abc123-{NEW_VERSION}"
    result, _ = ct("retrain", "hand-over", image, CIRCLE_TOKEN="t0k", PROJECT_SLUG="gh/acme/iris", CIRCLECI_API=url)
    assert result.returncode == 0, result.stderr
    parameters = {"deploy_model": NEW_VERSION, "deploy_image": image}
    assert calls == [("/project/gh/acme/iris/pipeline", "t0k", {"branch": "main", "parameters": parameters})]
    assert "handed over to pipeline 42" in result.stdout
    assert _version(ct.tmp/"gcs"/"model-bucket"/"candidates"/NEW_VERSION) == NEW_VERSION  # staged, not yet the champion
    assert _version(ct.tmp/"gcs"/"model-bucket"/"model") == CHAMPION
    # what the deploy pipeline's deploy job fetches
    deploying, _ = ct("champion", "candidate", NEW_VERSION, str(ct.tmp/"deploying"))
    assert deploying.returncode == 0 and _version(ct.tmp/"deploying") == NEW_VERSION


def test_hand_over_refuses_what_it_cannot_hand_over_and_says_why(ct, fetched, circleci_api):
    url, calls, handler = circleci_api
    api = dict(CIRCLE_TOKEN="t0k", PROJECT_SLUG="gh/acme/iris", CIRCLECI_API=url)
    assert ct("retrain", "hand-over", f"r/p/i:abc-{NEW_VERSION}", **api)[0].returncode == 1  # nothing was published
    assert ct("retrain", "run", str(fetched), FAKE_MONITOR="3")[0].returncode == 0
    result, _ = ct("retrain", "hand-over", f"r/p/i:abc-{CHAMPION}", **api)
    assert result.returncode == 2 and f"is not the image of model {NEW_VERSION}" in result.stderr
    result, _ = ct("retrain", "hand-over", f"r/p/i:abc-{NEW_VERSION}", **dict(api, CIRCLE_TOKEN=None))
    assert result.returncode == 2 and "set CIRCLE_TOKEN" in result.stderr
    assert calls == []
    handler.status = 403
    result, _ = ct("retrain", "hand-over", f"r/p/i:abc-{NEW_VERSION}", **api)
    assert result.returncode == 1 and "did not start the deploy pipeline" in result.stderr
    assert "Permission denied" in result.stderr


def test_champion_candidate_refuses_a_bad_or_missing_version(ct):
    result, log = ct("champion", "candidate", "latest", str(ct.tmp/"m"))
    assert result.returncode == 2 and "'latest' is not a model version" in result.stderr and log == ""
    result, _ = ct("champion", "candidate", NEW_VERSION, str(ct.tmp/"m"))
    assert result.returncode != 0 and "not found" in result.stderr
    result, _ = ct("champion", "stage", str(ct.tmp/"m"), MODEL_BUCKET=None)
    assert result.returncode == 2 and "set MODEL_BUCKET" in result.stderr
