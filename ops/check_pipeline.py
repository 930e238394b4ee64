"""Consistency checks for the shipping files that their JSON schemas cannot see.

check-jsonschema validates the shape of .circleci/config.yml and
kubernetes-validate the shape of kubernetes-deployment.yaml; neither knows
whether a `requires` names a real job, whether the pipeline deploys only what
it built, whether scheduled pipelines run the continuous-training workflow and
nothing else, leaving no approval waiting and handing a retrained model over to
a deploy pipeline of its own, with an approval before every deploy of it and
credentials wherever a bucket is used, whether the manifest runs the image as the Dockerfile built it, or
whether the build context holds what the Dockerfile copies. kubernetes-validate
has no schema for the custom resources of GKE's managed Prometheus either, so
the monitoring manifest is checked here against what their CRDs require, and
against the plain rules file and the Deployment it watches.

    .venv/bin/python ops/check_pipeline.py   # prints the problems, exits 1 if any
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from iris_classifier.gunicorn_conf import graceful_timeout as GRACEFUL_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".circleci" / "config.yml"
MANIFEST = ROOT / "kubernetes-deployment.yaml"
DOCKERFILE = ROOT / "Dockerfile"
MONITORING = ROOT / "ops" / "monitoring"

# Steps CircleCI provides; anything else must be a command defined in the config.
BUILTIN_STEPS = {
    "checkout", "run", "save_cache", "restore_cache", "store_artifacts",
    "store_test_results", "persist_to_workspace", "attach_workspace",
    "setup_remote_docker", "add_ssh_keys", "when", "unless",
}
# The image placeholder that ops/deploy.sh replaces with the commit's image.
IMAGE_PLACEHOLDER = "IMAGE_REF"
# Selects a workflow on scheduled pipelines; `not:` it keeps a workflow off them.
SCHEDULED = ["scheduled_pipeline", "<< pipeline.trigger_source >>"]
# Selects a workflow on the pipelines hand_over starts (`not:` it), or keeps it off them.
HANDED_OVER = ["", "<< pipeline.parameters.deploy_model >>"]
# Job steps that read or write the records or model buckets: they need the context's credentials.
BUCKET_USE = re.compile(r"ops/champion\.sh|ops/retrain\.sh (fetch|hand-over)|gcloud storage")


def _step_names(steps):
    """Names of the steps in a steps list, including those inside when/unless."""
    for step in steps or []:
        name, body = (step, None) if isinstance(step, str) else next(iter(step.items()))
        yield name
        if name in ("when", "unless") and isinstance(body, dict):
            yield from _step_names(body.get("steps"))


def _run_commands(steps) -> str:
    """The shell text of every `run` step, including those inside when/unless, joined (for looking up commands)."""
    texts = []
    for step in steps or []:
        if isinstance(step, dict) and "run" in step:
            run = step["run"]
            texts.append(run if isinstance(run, str) else run.get("command", ""))
        elif isinstance(step, dict) and set(step) & {"when", "unless"}:
            texts.append(_run_commands(next(iter(step.values())).get("steps")))
    return "\n".join(texts)


def _workflow_entries(workflow) -> dict[str, tuple[str, dict]]:
    """Workflow job entries by name: name -> (job key, options)."""
    entries = {}
    for entry in workflow.get("jobs", []):
        key, opts = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        opts = opts or {}
        entries[opts.get("name", key)] = (key, opts)
    return entries


def _branches_only(opts) -> list[str]:
    only = ((opts.get("filters") or {}).get("branches") or {}).get("only")
    return [only] if isinstance(only, str) else list(only or [])


def pipeline_problems(config: dict) -> list[str]:
    problems = []
    jobs = config.get("jobs") or {}
    commands = config.get("commands") or {}
    executors = config.get("executors") or {}

    for name, job in jobs.items():
        executor = job.get("executor")
        if isinstance(executor, dict):
            executor = executor.get("name")
        if executor is None:
            if not any(k in job for k in ("docker", "machine", "macos")):
                problems.append(f"job {name}: no executor")
        elif executor not in executors:
            problems.append(f"job {name}: executor {executor!r} is not defined")
    for kind, holders in (("job", jobs), ("command", commands)):
        for name, holder in holders.items():
            for step in _step_names(holder.get("steps")):
                if step not in BUILTIN_STEPS and step not in commands:
                    problems.append(f"{kind} {name}: step {step!r} is neither built in nor a defined command")

    workflows = {k: v for k, v in (config.get("workflows") or {}).items() if k != "version"}
    if not workflows:
        problems.append("no workflows")
    for wf_name, workflow in workflows.items():
        problems += [f"workflow {wf_name}: {p}" for p in workflow_problems(workflow, jobs)]
    if not any(schedule_role(w.get("when")) == "scheduled" for w in workflows.values()):
        problems.append("no workflow for scheduled pipelines (continuous training)")
    if not any(hand_over_role(w.get("when")) == "only" for w in workflows.values()):
        problems.append("no workflow for the deploy pipelines hand_over starts (deploy_model set)")

    image_ref = _run_commands((commands.get("image-ref") or {}).get("steps"))
    if not re.search(r"export IMAGE_REF=\S+:\$\{CIRCLE_SHA1\}", image_ref):
        problems.append("command image-ref: the image tag must be ${CIRCLE_SHA1}")
    for job in ("build_and_push", "deploy"):
        steps = list(_step_names((jobs.get(job) or {}).get("steps")))
        if "image-ref" not in steps:
            problems.append(f"job {job}: does not use the image-ref command")
    if re.search(r":latest\b", yaml.safe_dump(jobs)):
        problems.append("a job uses a :latest tag")

    expected_commands = [
        ("test", "make test"), ("train", "ops/retrain.sh train"), ("docs", "make docs"),
        ("champion", "ops/champion.sh fetch"), ("fetch_production", "ops/retrain.sh fetch"), ("retrain", "ops/retrain.sh run"),
        ("build_and_push", "ops/build-image.sh"), ("deploy", "ops/deploy.sh"), ("deploy", "ops/champion.sh upload"),
        ("hand_over", "ops/retrain.sh hand-over"), ("deploy", "ops/champion.sh candidate"),
    ]
    for job, command in expected_commands:
        if command not in _run_commands((jobs.get(job) or {}).get("steps")):
            problems.append(f"job {job}: does not run {command!r}")
    return problems + retraining_job_problems(jobs, commands)


def retraining_job_problems(jobs: dict, commands: dict) -> list[str]:
    """The jobs after a scheduled retrain stop when it published nothing; the champion is replaced only once deployed."""
    problems = []
    deploy = _run_commands((jobs.get("deploy") or {}).get("steps"))
    if "ops/champion.sh upload" in deploy and deploy.index("ops/champion.sh upload") < deploy.find("ops/deploy.sh"):
        problems.append("job deploy: uploads the champion before the rollout has succeeded")
    for job in ("build_and_push", "hand_over"):
        steps = list(_step_names((jobs.get(job) or {}).get("steps")))
        if "halt-unless-retrained" not in steps or "gcp-auth" in steps[:steps.index("halt-unless-retrained")]:
            problems.append(f"job {job}: does not stop before authenticating when retrain published nothing (halt-unless-retrained)")
    halt = _run_commands((commands.get("halt-unless-retrained") or {}).get("steps"))
    if not ("ops/retrain.sh decision" in halt and "circleci-agent step halt" in halt):
        problems.append("command halt-unless-retrained: must halt the job unless `ops/retrain.sh decision` finds a challenger")
    return problems


def _is_scheduled(statement) -> bool:
    return isinstance(statement, dict) and list(statement) == ["equal"] and sorted(map(str, statement["equal"])) == sorted(SCHEDULED)


def schedule_role(when) -> str:
    """'scheduled' if `when` selects only scheduled pipelines, 'excluded' if it never does, else 'both'."""
    parts = when["and"] if isinstance(when, dict) and list(when) == ["and"] else [when]
    if any(_is_scheduled(p) for p in parts):
        return "scheduled"
    if any(isinstance(p, dict) and list(p) == ["not"] and _is_scheduled(p["not"]) for p in parts):
        return "excluded"
    return "both"


def _is_handed_over(statement) -> bool:
    return isinstance(statement, dict) and list(statement) == ["equal"] and sorted(map(str, statement["equal"])) == sorted(HANDED_OVER)


def hand_over_role(when) -> str:
    """'only' if `when` selects only the deploy pipelines hand_over starts, 'never' if it never does, else 'both'."""
    parts = when["and"] if isinstance(when, dict) and list(when) == ["and"] else [when]
    if any(isinstance(p, dict) and list(p) == ["not"] and _is_handed_over(p["not"]) for p in parts):
        return "only"
    if any(_is_handed_over(p) for p in parts):
        return "never"
    return "both"


def workflow_problems(workflow: dict, jobs: dict) -> list[str]:
    """One workflow: its jobs exist and wait for what they need, in the shape its trigger calls for."""
    problems, entries = [], _workflow_entries(workflow)
    for name, (key, opts) in entries.items():
        if opts.get("type") != "approval" and key not in jobs:
            problems.append(f"job {key!r} is not defined")
        for req in opts.get("requires") or []:
            if req not in entries:
                problems.append(f"{name} requires {req!r}, which is not in the workflow")
        if opts.get("type") != "approval" and BUCKET_USE.search(_run_commands((jobs.get(key) or {}).get("steps"))) and not opts.get("context"):
            problems.append(f"{name} uses a bucket but has no context (no credentials)")
        if opts.get("context") and key not in ("build_and_push", "deploy") and _branches_only(opts) != ["main"]:
            problems.append(f"{name} has a context (production credentials) but does not run on main only")

    def requires(name, target, seen=()):
        """Whether `name` waits for `target`, directly or through approval jobs."""
        for req in entries.get(name, ("", {}))[1].get("requires") or []:
            if req == target:
                return True
            if entries.get(req, ("", {}))[1].get("type") == "approval" and req not in seen:
                if requires(req, target, seen + (req,)):
                    return True
        return False

    role, handed = schedule_role(workflow.get("when")), hand_over_role(workflow.get("when"))
    if role == "both":
        problems.append("runs on scheduled pipelines too: add `not: equal: [scheduled_pipeline, << pipeline.trigger_source >>]` to its when")
    if role == "excluded" and handed == "both":
        problems.append('runs on the deploy pipelines hand_over starts too: add `equal: ["", << pipeline.parameters.deploy_model >>]` to its when')
    if handed == "only":
        return problems + handed_over_problems(entries)
    ships = "deploy" in entries or "build_and_push" in entries
    if role == "scheduled":
        chain = [("retrain", "fetch_production"), ("build_and_push", "retrain"), ("hand_over", "build_and_push")]
    else:
        chain = [("train", "test"), ("docs", "train")] + ([("train", "champion"), ("build_and_push", "train"), ("deploy", "build_and_push")] if ships else [])
    for needed in dict.fromkeys(j for pair in chain for j in pair if j != "docs"):
        if needed not in entries:
            problems.append(f"no {needed} job")
    for job, dependency in chain:
        if job in entries and not requires(job, dependency):
            problems.append(f"{job} does not require {dependency}")
    if role != "scheduled" and ships and "train" in entries and entries["train"][1].get("champion") is not True:
        problems.append("train does not pass champion: true (it would not train against the champion)")
    if role == "scheduled":
        if "deploy" in entries or any(opts.get("type") == "approval" for _, opts in entries.values()):
            problems.append("approves or deploys itself: a run that publishes nothing would leave an approval waiting; hand_over starts the deploy pipeline")
        if "build_and_push" in entries and entries["build_and_push"][1].get("retrained") is not True:
            problems.append("build_and_push does not pass retrained: true (it would ship without a new model)")
    problems += _shipping_job_problems(entries)
    return problems


def handed_over_problems(entries: dict) -> list[str]:
    """The deploy pipeline hand_over starts: an approval, then the deploy of the handed-over model, and nothing else."""
    problems = [f"runs {name}: this pipeline only approves and deploys" for name, (key, opts) in entries.items()
                if opts.get("type") != "approval" and key != "deploy"]
    if "deploy" not in entries:
        return problems + ["no deploy job"]
    deploy_reqs = entries["deploy"][1].get("requires") or []
    if not any(entries.get(r, ("", {}))[1].get("type") == "approval" for r in deploy_reqs):
        problems.append("deploy is not behind an approval job")
    if entries["deploy"][1].get("handed_over") is not True:
        problems.append("deploy does not pass handed_over: true (it would deploy without the handed-over model)")
    return problems + _shipping_job_problems(entries)


def _shipping_job_problems(entries: dict) -> list[str]:
    """The jobs that hold production credentials run on main only, with the context that gives them."""
    problems = []
    for job in ("build_and_push", "hand_over", "deploy"):
        if job not in entries:
            continue
        opts = entries[job][1]
        if _branches_only(opts) != ["main"]:
            problems.append(f"{job} must run on main only")
        # CircleCI issues OIDC tokens (and context secrets) only with a context.
        if not opts.get("context"):
            problems.append(f"{job} has no context (no OIDC token)")
    return problems


def cache_key_problems(config_text: str, root: Path = ROOT) -> list[str]:
    """Cache keys must hash committed files: CircleCI's checkout has no ignored ones."""
    problems = []
    for name in sorted(set(re.findall(r'checksum "([^"]+)"', config_text))):
        ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", name]).returncode == 0
        if ignored or not (root / name).is_file():
            problems.append(f'cache key checksum "{name}": not a committed file')
    return problems


def _labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def manifest_problems(documents: list[dict], dockerfile: str, graceful_timeout: int) -> list[str]:
    """`graceful_timeout`: the server's, from `iris_classifier.gunicorn_conf` (granian's kill timeout is the same)."""
    problems = []
    by_kind = {doc["kind"]: doc for doc in documents if doc}
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        if kind not in by_kind:
            problems.append(f"no {kind}")
    if problems:
        return problems
    deployment, service = by_kind["Deployment"], by_kind["Service"]
    hpa, pdb = by_kind["HorizontalPodAutoscaler"], by_kind["PodDisruptionBudget"]
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = pod["containers"][0]

    for what, selector in (
        ("Deployment selector", spec["selector"]["matchLabels"]),
        ("Service selector", service["spec"]["selector"]),
        ("PodDisruptionBudget selector", pdb["spec"]["selector"]["matchLabels"]),
    ):
        if not _labels_match(selector, labels):
            problems.append(f"{what} does not select the pod template's labels")
    if hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
        problems.append("the HPA does not target the Deployment")
    if hpa["spec"].get("minReplicas", 1) < 2:
        problems.append("HPA minReplicas must be at least 2")
    if spec.get("replicas") != hpa["spec"].get("minReplicas"):
        problems.append("spec.replicas must equal the HPA's minReplicas (ops/deploy.sh keeps a higher live count)")
    if spec["strategy"]["rollingUpdate"].get("maxUnavailable") != 0:
        problems.append("rollingUpdate.maxUnavailable must be 0")

    if container["image"] != IMAGE_PLACEHOLDER:
        problems.append(f"container image must be the placeholder {IMAGE_PLACEHOLDER} (set by ops/deploy.sh)")
    exposed = re.findall(r"^EXPOSE\s+(\d+)", dockerfile, re.M)
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if [str(p) for p in ports.values()] != exposed:
        problems.append(f"containerPort {list(ports.values())} differs from the Dockerfile's EXPOSE {exposed}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        port = ((container.get(probe) or {}).get("httpGet") or {}).get("port")
        if port is None:
            problems.append(f"no HTTP {probe}")
        elif port not in ports and port not in ports.values():
            problems.append(f"{probe} uses port {port!r}, which the container does not declare")
    if (service["spec"]["ports"][0].get("targetPort") not in (*ports, *ports.values())):
        problems.append("the Service's targetPort is not a container port")

    user = re.findall(r"^USER\s+(\d+)(?::(\d+))?", dockerfile, re.M)
    pod_sc, sc = pod.get("securityContext") or {}, container.get("securityContext") or {}
    if not user or pod_sc.get("runAsUser") != int(user[-1][0]):
        problems.append(f"runAsUser {pod_sc.get('runAsUser')} differs from the Dockerfile's numeric USER {user}")
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append("runAsNonRoot must be true")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem must be true")
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    if not any(m["mountPath"] == "/tmp" and m["name"] in empty_dirs for m in container.get("volumeMounts", [])):
        problems.append("/tmp must be an emptyDir (the only writable path with a read-only root)")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken must be false")
    pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    if pod.get("terminationGracePeriodSeconds", 30) <= pre_stop + graceful_timeout:
        problems.append(f"terminationGracePeriodSeconds must exceed preStop ({pre_stop} s) + the server's "
                        f"graceful_timeout ({graceful_timeout} s), or in-flight requests are killed")
    if not any(e["name"] == "WEB_CONCURRENCY" for e in container.get("env", [])):
        problems.append("WEB_CONCURRENCY must be set: the server's default follows the node's CPUs, not the pod's")
    resources = container.get("resources") or {}
    if not (resources.get("requests", {}).get("cpu") and resources.get("requests", {}).get("memory")
            and resources.get("limits", {}).get("memory")):
        problems.append("CPU/memory requests and a memory limit are required")
    token = next((e for e in container.get("env", []) if e["name"] == "IRIS_FEEDBACK_TOKEN"), None)
    ref = ((token or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if not (ref.get("name") and ref.get("key") and ref.get("optional") is True and "value" not in (token or {})):
        problems.append("IRIS_FEEDBACK_TOKEN must come from an optional secretKeyRef (never a literal value)")
    return problems


RECORD_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")   # the Rules CRD's pattern for `record`
SEVERITIES = {"warning", "critical"}


def rule_problems(group: str, rule: dict) -> list[str]:
    """One rule against the Rules CRD's validations, and the project's: every alert has a severity, a summary and a description."""
    name = f"group {group}: {rule.get('alert') or rule.get('record') or 'a rule'}"
    problems = []
    if ("alert" in rule) == ("record" in rule):
        problems.append(f"{name}: must set exactly one of record and alert")
    if not rule.get("expr"):
        problems.append(f"{name}: no expr")
    if "record" in rule and not RECORD_NAME.fullmatch(str(rule["record"])):
        problems.append(f"{name}: record is not a valid metric name")
    if "record" in rule and ("annotations" in rule or "for" in rule):
        problems.append(f"{name}: annotations and for are only for alerts")
    if "alert" in rule:
        if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity label must be one of {sorted(SEVERITIES)}")
        if not {"summary", "description"} <= set(rule.get("annotations") or {}):
            problems.append(f"{name}: needs summary and description annotations (what it means, what to do)")
    return problems


def monitoring_problems(gke: list[dict], rules: dict, manifest: list[dict]) -> list[str]:
    """The managed-Prometheus manifest (PodMonitoring and Rules) against the CRDs' required fields, rules.yml and the Deployment."""
    kinds = {doc["kind"]: doc for doc in gke if doc}
    problems = [f"no {kind} (monitoring.googleapis.com/v1)" for kind in ("PodMonitoring", "Rules")
                if kinds.get(kind, {}).get("apiVersion") != "monitoring.googleapis.com/v1"]
    if problems:
        return problems
    monitor, deployment = kinds["PodMonitoring"], next(d for d in manifest if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    if not _labels_match((monitor["spec"].get("selector") or {}).get("matchLabels") or {}, deployment["spec"]["template"]["metadata"]["labels"]):
        problems.append("PodMonitoring selector does not select the Deployment's pods")
    endpoints = monitor["spec"].get("endpoints") or []
    if not endpoints:
        problems.append("PodMonitoring has no endpoints")
    for endpoint in endpoints:
        if endpoint.get("port") not in {p.get("name") for p in container.get("ports", [])}:
            problems.append(f"PodMonitoring port {endpoint.get('port')!r} is not a named port of the container")
        if not endpoint.get("interval"):
            problems.append("PodMonitoring endpoint has no interval (required by monitoring.googleapis.com/v1)")
        if endpoint.get("path", "/metrics") != "/metrics":
            problems.append("PodMonitoring must scrape /metrics")
    if kinds["Rules"]["spec"].get("groups") != rules.get("groups"):
        problems.append("the Rules resource's groups differ from ops/monitoring/rules.yml: copy them over")
    job = f'job="{monitor["metadata"]["name"]}"'
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            problems += rule_problems(group.get("name"), rule)
            if re.search(r"\bup\{", rule.get("expr", "")) and job not in rule["expr"]:
                problems.append(f"group {group.get('name')}: `up` must be selected by {job}, the PodMonitoring's name")
    return problems


def dockerfile_problems(dockerfile: str, dockerignore: str) -> list[str]:
    """Everything the Dockerfile copies from the context passes the .dockerignore allow-list."""
    problems = []
    patterns = [line.strip() for line in dockerignore.splitlines() if line.strip() and not line.startswith("#")]
    if not patterns or patterns[0] != "*":
        return [".dockerignore must start with '*' (an allow-list keeps the context small)"]
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", dockerfile, re.M):
        *sources, _dest = [w for w in line.split() if not w.startswith("--")]
        for source in sources:
            source = source.rstrip("/")
            if not any(source == a or source.startswith(a + "/") for a in allowed):
                problems.append(f"COPY {source}: not in the .dockerignore allow-list")
    return problems


def main() -> int:
    config = yaml.safe_load(CONFIG.read_text())
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    problems = [f"{CONFIG.relative_to(ROOT)}: {p}" for p in pipeline_problems(config)]
    problems += [f"{CONFIG.relative_to(ROOT)}: {p}" for p in cache_key_problems(CONFIG.read_text())]
    problems += [f"{MANIFEST.name}: {p}" for p in manifest_problems(documents, DOCKERFILE.read_text(), GRACEFUL_TIMEOUT)]
    dockerignore = (ROOT / ".dockerignore").read_text()
    problems += [f"Dockerfile: {p}" for p in dockerfile_problems(DOCKERFILE.read_text(), dockerignore)]
    gke = list(yaml.safe_load_all((MONITORING / "gke-managed-prometheus.yaml").read_text()))
    rules = yaml.safe_load((MONITORING / "rules.yml").read_text())
    problems += [f"ops/monitoring: {p}" for p in monitoring_problems(gke, rules, documents)]
    for problem in problems:
        print(problem)
    if not problems:
        print("pipeline, manifests and monitoring consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
