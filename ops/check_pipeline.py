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
# The pod template's annotation that ops/deploy.sh sets to the model's version (from this placeholder).
MODEL_ANNOTATION, MODEL_PLACEHOLDER = "iris-classifier/model-version", "MODEL_VERSION"
# Selects a workflow on scheduled pipelines; `not:` it keeps a workflow off them.
SCHEDULED = ["scheduled_pipeline", "<< pipeline.trigger_source >>"]
# Selects a workflow on the pipelines hand_over starts (`not:` it), or keeps it off them.
HANDED_OVER = ["", "<< pipeline.parameters.deploy_model >>"]
# Job steps that read or write the records or model buckets: they need the context's credentials.
# Job steps that run an ops script that reads JSON with jq.
JQ_USE = re.compile(r"ops/champion\.sh|ops/deploy\.sh|ops/retrain\.sh (fetch|hand-over|in-force)")
BUCKET_USE = re.compile(r"ops/champion\.sh|ops/retrain\.sh (fetch|hand-over)|gcloud storage")


def _step_names(steps):
    """Names of the steps in a steps list, including those inside when/unless."""
    for step in steps or []:
        name, body = (step, None) if isinstance(step, str) else next(iter(step.items()))
        yield name
        if name in ("when", "unless") and isinstance(body, dict):
            yield from _step_names(body.get("steps"))


def _run_text(step) -> str | None:
    """The shell text of one step: its `run` command, or those of the steps inside its when/unless (None: neither)."""
    if isinstance(step, dict) and "run" in step:
        return step["run"] if isinstance(step["run"], str) else step["run"].get("command", "")
    if isinstance(step, dict) and set(step) & {"when", "unless"}:
        return _run_commands(next(iter(step.values())).get("steps"))
    return None


def _run_commands(steps) -> str:
    """The shell text of every `run` step, including those inside when/unless, joined (for looking up commands)."""
    return "\n".join(text for text in map(_run_text, steps or []) if text is not None)


def _job_commands(jobs: dict, job: str) -> str:
    """The shell text of the job `job` (empty if there is none)."""
    return _run_commands((jobs.get(job) or {}).get("steps"))


def _job_steps(jobs: dict, job: str) -> list[str]:
    """The step names of the job `job` (none if there is none)."""
    return list(_step_names((jobs.get(job) or {}).get("steps")))


def _workflow_entries(workflow) -> dict[str, tuple[str, dict]]:
    """Workflow job entries by name: name -> (job key, options)."""
    entries = {}
    for entry in workflow.get("jobs", []):
        key, opts = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        opts = opts or {}
        entries[opts.get("name", key)] = (key, opts)
    return entries


def _branches_only(opts) -> list[str]:
    """The branches a workflow job's filters allow (none: every branch)."""
    only = ((opts.get("filters") or {}).get("branches") or {}).get("only")
    return [only] if isinstance(only, str) else list(only or [])


def _executor_name(job: dict) -> str | None:
    """The name of the executor a job uses, if it names one."""
    executor = job.get("executor")
    return executor.get("name") if isinstance(executor, dict) else executor


def executor_problems(jobs: dict,  # the config's jobs
                      executors: dict,  # the config's executors
                      ) -> list[str]:
    """Every job runs on an executor the config defines, or on an image of its own."""
    problems = []
    for name, job in jobs.items():
        executor = _executor_name(job)
        if executor is None and not any(k in job for k in ("docker", "machine", "macos")):
            problems.append(f"job {name}: no executor")
        elif executor is not None and executor not in executors:
            problems.append(f"job {name}: executor {executor!r} is not defined")
    return problems


def step_problems(jobs: dict,  # the config's jobs
                  commands: dict,  # the config's commands
                  ) -> list[str]:
    """Every step of a job or command is built in or a command the config defines."""
    return [f"{kind} {name}: step {step!r} is neither built in nor a defined command"
            for kind, holders in (("job", jobs), ("command", commands))
            for name, holder in holders.items()
            for step in _step_names(holder.get("steps"))
            if step not in BUILTIN_STEPS and step not in commands]


def workflows_problems(workflows: dict,  # the config's workflows, without `version`
                       jobs: dict,  # the config's jobs
                       ) -> list[str]:
    """Each workflow's problems, and a workflow for each trigger: pushes, schedules and hand_over's pipelines."""
    problems = [] if workflows else ["no workflows"]
    for name, workflow in workflows.items():
        problems += [f"workflow {name}: {p}" for p in workflow_problems(workflow, jobs)]
    if not any(schedule_role(w.get("when")) == "scheduled" for w in workflows.values()):
        problems.append("no workflow for scheduled pipelines (continuous training)")
    if not any(hand_over_role(w.get("when")) == "only" for w in workflows.values()):
        problems.append("no workflow for the deploy pipelines hand_over starts (deploy_model set)")
    return problems


def image_problems(jobs: dict,  # the config's jobs
                   commands: dict,  # the config's commands
                   ) -> list[str]:
    """Images are tagged with the commit, through the image-ref command, and never :latest."""
    problems = []
    image_ref = _run_commands((commands.get("image-ref") or {}).get("steps"))
    if not re.search(r"export IMAGE_REF=\S+:\$\{CIRCLE_SHA1\}", image_ref):
        problems.append("command image-ref: the image tag must be ${CIRCLE_SHA1}")
    problems += [f"job {job}: does not use the image-ref command" for job in ("build_and_push", "deploy")
                 if "image-ref" not in _job_steps(jobs, job)]
    problems += [f"job {job}: does not use the cluster-credentials command (it reads the cluster)"
                 for job in ("deploy", "fetch_production", "champion")
                 if "cluster-credentials" not in _job_steps(jobs, job)]
    if re.search(r":latest\b", yaml.safe_dump(jobs)):
        problems.append("a job uses a :latest tag")
    return problems


# The project's entry point each job runs: the jobs only wire them together.
EXPECTED_COMMANDS = [
    ("test", "make test"), ("train", "ops/retrain.sh train"), ("docs", "make docs"),
    ("champion", "ops/champion.sh fetch"), ("champion", "ops/retrain.sh in-force"),
    ("fetch_production", "ops/retrain.sh fetch"),
    ("retrain", "ops/retrain.sh run"), ("build_and_push", "ops/build-image.sh"), ("deploy", "ops/deploy.sh"),
    ("deploy", "ops/champion.sh upload"), ("deploy", "ops/champion.sh check"),
    ("hand_over", "ops/retrain.sh hand-over"), ("deploy", "ops/champion.sh candidate"),
]


def command_problems(jobs: dict,  # the config's jobs
                     ) -> list[str]:
    """Each job runs the project's own entry point for its work (`EXPECTED_COMMANDS`)."""
    return [f"job {job}: does not run {command!r}" for job, command in EXPECTED_COMMANDS
            if command not in _job_commands(jobs, job)]


def pipeline_problems(config: dict,  # .circleci/config.yml, parsed
                      ) -> list[str]:
    """What the CircleCI schema cannot see: jobs, steps, workflows and entry points that fit together."""
    jobs, commands = config.get("jobs") or {}, config.get("commands") or {}
    workflows = {k: v for k, v in (config.get("workflows") or {}).items() if k != "version"}
    return (executor_problems(jobs, config.get("executors") or {}) + step_problems(jobs, commands)
            + workflows_problems(workflows, jobs) + image_problems(jobs, commands) + command_problems(jobs)
            + retraining_job_problems(jobs, commands))


def _runs_before(text: str, first: str, then: str) -> bool:
    """Whether the shell text `text` runs `first` before `then` (or `then` not at all)."""
    return text.index(first) < text.find(then)


def deploy_order_problems(jobs: dict,  # the config's jobs
                          ) -> list[str]:
    """The deploy job checks the champion before the rollout and replaces it only after."""
    problems, deploy = [], _job_commands(jobs, "deploy")
    if "ops/champion.sh upload" in deploy and _runs_before(deploy, "ops/champion.sh upload", "ops/deploy.sh"):
        problems.append("job deploy: uploads the champion before the rollout has succeeded")
    if "ops/champion.sh check" in deploy and deploy.index("ops/champion.sh check") > deploy.find("ops/deploy.sh"):
        problems.append("job deploy: checks the champion after the rollout: a stale model would serve already")
    return problems


def jq_problems(jobs: dict,  # the config's jobs
                ) -> list[str]:
    """Jobs that run the ops scripts that read JSON install jq first (the jq command)."""
    return [f"job {name}: runs an ops script that reads JSON with jq, without the jq step" for name, job in jobs.items()
            if JQ_USE.search(_run_commands(job.get("steps"))) and "jq" not in _step_names(job.get("steps"))]


def halt_problems(jobs: dict,  # the config's jobs
                  commands: dict,  # the config's commands
                  ) -> list[str]:
    """The jobs after a scheduled retrain stop, before any credentials, when it published nothing."""
    problems = []
    for job in ("build_and_push", "hand_over"):
        steps = _job_steps(jobs, job)
        if "halt-unless-retrained" not in steps or "gcp-auth" in steps[:steps.index("halt-unless-retrained")]:
            problems.append(f"job {job}: does not stop before authenticating when retrain published nothing "
                            "(halt-unless-retrained)")
    halt = _run_commands((commands.get("halt-unless-retrained") or {}).get("steps"))
    if not ("ops/retrain.sh decision" in halt and "circleci-agent step halt" in halt):
        problems.append("command halt-unless-retrained: must halt the job unless `ops/retrain.sh decision` "
                        "finds a challenger")
    return problems


def retraining_job_problems(jobs: dict,  # the config's jobs
                            commands: dict,  # the config's commands
                            ) -> list[str]:
    """After a scheduled retrain that published nothing the jobs stop; the champion changes only once deployed."""
    return deploy_order_problems(jobs) + jq_problems(jobs) + halt_problems(jobs, commands)


def _is_equal(statement, pair: list[str]) -> bool:
    """Whether a `when` statement is `equal: pair`, in either order."""
    if not (isinstance(statement, dict) and list(statement) == ["equal"]):
        return False
    return sorted(map(str, statement["equal"])) == sorted(pair)


def _is_not(statement, pair: list[str]) -> bool:
    """Whether a `when` statement is `not: equal: pair`."""
    return isinstance(statement, dict) and list(statement) == ["not"] and _is_equal(statement["not"], pair)


def _when_parts(when) -> list:
    """The statements a `when` requires all of: those of its `and`, or itself."""
    return when["and"] if isinstance(when, dict) and list(when) == ["and"] else [when]


def schedule_role(when) -> str:
    """'scheduled' if `when` selects only scheduled pipelines, 'excluded' if it never does, else 'both'."""
    parts = _when_parts(when)
    if any(_is_equal(p, SCHEDULED) for p in parts):
        return "scheduled"
    if any(_is_not(p, SCHEDULED) for p in parts):
        return "excluded"
    return "both"


def hand_over_role(when) -> str:
    """'only' if `when` selects only the deploy pipelines hand_over starts, 'never' if it never does, else 'both'."""
    parts = _when_parts(when)
    if any(_is_not(p, HANDED_OVER) for p in parts):
        return "only"
    if any(_is_equal(p, HANDED_OVER) for p in parts):
        return "never"
    return "both"


def _requires(entries: dict, name: str, target: str, seen: tuple = ()) -> bool:
    """Whether the workflow job `name` waits for `target`, directly or through approval jobs."""
    for req in entries.get(name, ("", {}))[1].get("requires") or []:
        if req == target:
            return True
        if entries.get(req, ("", {}))[1].get("type") == "approval" and req not in seen:
            if _requires(entries, req, target, seen + (req,)):
                return True
    return False


def _entry_problems(name: str, key: str, opts: dict, entries: dict, jobs: dict) -> list[str]:
    """One workflow job: it exists, waits for jobs of its workflow, and has credentials on main only."""
    problems, approval = [], opts.get("type") == "approval"
    if not approval and key not in jobs:
        problems.append(f"job {key!r} is not defined")
    problems += [f"{name} requires {req!r}, which is not in the workflow" for req in opts.get("requires") or []
                 if req not in entries]
    if not approval and BUCKET_USE.search(_job_commands(jobs, key)) and not opts.get("context"):
        problems.append(f"{name} uses a bucket but has no context (no credentials)")
    if opts.get("context") and key not in ("build_and_push", "deploy") and _branches_only(opts) != ["main"]:
        problems.append(f"{name} has a context (production credentials) but does not run on main only")
    return problems


def _trigger_problems(role: str, handed: str) -> list[str]:
    """A workflow's `when` keeps it off the pipelines that other workflows are for."""
    problems = []
    if role == "both":
        problems.append("runs on scheduled pipelines too: add "
                        "`not: equal: [scheduled_pipeline, << pipeline.trigger_source >>]` to its when")
    if role == "excluded" and handed == "both":
        problems.append("runs on the deploy pipelines hand_over starts too: add "
                        '`equal: ["", << pipeline.parameters.deploy_model >>]` to its when')
    return problems


def _chain(role: str, ships: bool) -> list[tuple[str, str]]:
    """The (job, what it must wait for) pairs of a workflow with this trigger role."""
    if role == "scheduled":
        return [("fetch_production", "test"), ("retrain", "fetch_production"), ("build_and_push", "retrain"),
                ("hand_over", "build_and_push")]
    shipping = [("train", "champion"), ("build_and_push", "train"), ("deploy", "build_and_push")] if ships else []
    return [("train", "test"), ("docs", "train")] + shipping


def _chain_problems(entries: dict, chain: list[tuple[str, str]]) -> list[str]:
    """The chain's jobs (docs aside) are in the workflow, each waiting for the one before it."""
    problems = [f"no {needed} job" for needed in dict.fromkeys(j for pair in chain for j in pair if j != "docs")
                if needed not in entries]
    return problems + [f"{job} does not require {dependency}" for job, dependency in chain
                       if job in entries and not _requires(entries, job, dependency)]


def _scheduled_problems(entries: dict) -> list[str]:
    """A scheduled workflow neither approves nor deploys, and builds only the retrained model."""
    problems = []
    if "deploy" in entries or any(opts.get("type") == "approval" for _, opts in entries.values()):
        problems.append("approves or deploys itself: a run that publishes nothing would leave an approval waiting; "
                        "hand_over starts the deploy pipeline")
    if "build_and_push" in entries and entries["build_and_push"][1].get("retrained") is not True:
        problems.append("build_and_push does not pass retrained: true (it would ship without a new model)")
    return problems


def workflow_problems(workflow: dict,  # one workflow of the config
                      jobs: dict,  # the config's jobs
                      ) -> list[str]:
    """One workflow: its jobs exist and wait for what they need, in the shape its trigger calls for."""
    entries = _workflow_entries(workflow)
    problems = [p for name, (key, opts) in entries.items() for p in _entry_problems(name, key, opts, entries, jobs)]
    role, handed = schedule_role(workflow.get("when")), hand_over_role(workflow.get("when"))
    problems += _trigger_problems(role, handed)
    if handed == "only":
        return problems + handed_over_problems(entries)
    ships = "deploy" in entries or "build_and_push" in entries
    problems += _chain_problems(entries, _chain(role, ships))
    if role != "scheduled" and ships and "train" in entries and entries["train"][1].get("champion") is not True:
        problems.append("train does not pass champion: true (it would not train against the champion)")
    if role == "scheduled":
        problems += _scheduled_problems(entries)
    return problems + _shipping_job_problems(entries)


def handed_over_problems(entries: dict,  # the workflow's jobs, from `_workflow_entries`
                         ) -> list[str]:
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
    """Whether a non-empty selector selects `labels`."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


MANIFEST_KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")


def _env(container: dict, name: str) -> dict | None:
    """The container's environment variable `name`, if it sets one."""
    return next((e for e in container.get("env", []) if e["name"] == name), None)


def selector_problems(by_kind: dict,  # the manifest's documents by kind
                      ) -> list[str]:
    """The Deployment, Service and PodDisruptionBudget select the pod template's labels."""
    deployment = by_kind["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = (("Deployment selector", deployment["spec"]["selector"]["matchLabels"]),
                 ("Service selector", by_kind["Service"]["spec"]["selector"]),
                 ("PodDisruptionBudget selector", by_kind["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]))
    return [f"{what} does not select the pod template's labels" for what, selector in selectors
            if not _labels_match(selector, labels)]


def scaling_problems(by_kind: dict,  # the manifest's documents by kind
                     ) -> list[str]:
    """The autoscaler targets the Deployment, keeps two pods at least, and a rollout never goes below them."""
    deployment, hpa = by_kind["Deployment"], by_kind["HorizontalPodAutoscaler"]["spec"]
    problems = []
    if hpa["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
        problems.append("the HPA does not target the Deployment")
    if hpa.get("minReplicas", 1) < 2:
        problems.append("HPA minReplicas must be at least 2")
    if deployment["spec"].get("replicas") != hpa.get("minReplicas"):
        problems.append("spec.replicas must equal the HPA's minReplicas (ops/deploy.sh keeps a higher live count)")
    if deployment["spec"]["strategy"]["rollingUpdate"].get("maxUnavailable") != 0:
        problems.append("rollingUpdate.maxUnavailable must be 0")
    return problems


def placeholder_problems(template: dict,  # the Deployment's pod template
                         ) -> list[str]:
    """The image and the model version are the placeholders ops/deploy.sh fills in."""
    problems = []
    if template["spec"]["containers"][0]["image"] != IMAGE_PLACEHOLDER:
        problems.append(f"container image must be the placeholder {IMAGE_PLACEHOLDER} (set by ops/deploy.sh)")
    if (template["metadata"].get("annotations") or {}).get(MODEL_ANNOTATION) != MODEL_PLACEHOLDER:
        problems.append(f"the pod template's annotation {MODEL_ANNOTATION} must be the placeholder {MODEL_PLACEHOLDER} "
                        "(set by ops/deploy.sh; ops/retrain.sh reads it as the model in force)")
    return problems


def port_problems(container: dict,  # the Deployment's container
                  service: dict,  # the Service
                  dockerfile: str,  # the Dockerfile's text
                  ) -> list[str]:
    """The container declares the port the image exposes, and the probes and the Service use it."""
    problems = []
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
    if service["spec"]["ports"][0].get("targetPort") not in (*ports, *ports.values()):
        problems.append("the Service's targetPort is not a container port")
    return problems


def security_problems(pod: dict,  # the Deployment's pod spec
                      dockerfile: str,  # the Dockerfile's text
                      ) -> list[str]:
    """The pod runs as the image's non-root user, on a read-only root with /tmp writable, without an API token."""
    container, problems = pod["containers"][0], []
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
    return problems


def shutdown_problems(pod: dict,  # the Deployment's pod spec
                      graceful_timeout: int,  # the server's, from `iris_classifier.gunicorn_conf` (granian's too)
                      ) -> list[str]:
    """The kubelet waits for the preStop pause and the server's graceful shutdown before it kills the pod."""
    container = pod["containers"][0]
    pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    if pod.get("terminationGracePeriodSeconds", 30) > pre_stop + graceful_timeout:
        return []
    return [f"terminationGracePeriodSeconds must exceed preStop ({pre_stop} s) + the server's "
            f"graceful_timeout ({graceful_timeout} s), or in-flight requests are killed"]


def resource_problems(container: dict,  # the Deployment's container
                      ) -> list[str]:
    """Workers follow the pod's size, which requests and a memory limit set; the feedback token is a secret."""
    problems = []
    if not _env(container, "WEB_CONCURRENCY"):
        problems.append("WEB_CONCURRENCY must be set: the server's default follows the node's CPUs, not the pod's")
    resources = container.get("resources") or {}
    if not (resources.get("requests", {}).get("cpu") and resources.get("requests", {}).get("memory")
            and resources.get("limits", {}).get("memory")):
        problems.append("CPU/memory requests and a memory limit are required")
    token = _env(container, "IRIS_FEEDBACK_TOKEN")
    ref = ((token or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if not (ref.get("name") and ref.get("key") and ref.get("optional") is True and "value" not in (token or {})):
        problems.append("IRIS_FEEDBACK_TOKEN must come from an optional secretKeyRef (never a literal value)")
    return problems


def manifest_problems(documents: list[dict],  # kubernetes-deployment.yaml, parsed
                      dockerfile: str,  # the Dockerfile's text
                      graceful_timeout: int,  # the server's, from `iris_classifier.gunicorn_conf` (granian's too)
                      ) -> list[str]:
    """The manifest runs the image as the Dockerfile built it, safely, and scales and stops it gently."""
    by_kind = {doc["kind"]: doc for doc in documents if doc}
    missing = [f"no {kind}" for kind in MANIFEST_KINDS if kind not in by_kind]
    if missing:
        return missing
    template = by_kind["Deployment"]["spec"]["template"]
    pod = template["spec"]
    return (selector_problems(by_kind) + scaling_problems(by_kind) + placeholder_problems(template)
            + port_problems(pod["containers"][0], by_kind["Service"], dockerfile) + security_problems(pod, dockerfile)
            + shutdown_problems(pod, graceful_timeout) + resource_problems(pod["containers"][0]))


RECORD_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")   # the Rules CRD's pattern for `record`
SEVERITIES = {"warning", "critical"}


def rule_problems(group: str, rule: dict) -> list[str]:
    """One rule against the Rules CRD's validations, and the project's: alerts have a severity, summary, description."""
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


def endpoint_problems(monitor: dict,  # the PodMonitoring resource
                      container: dict,  # the Deployment's container
                      ) -> list[str]:
    """The PodMonitoring scrapes /metrics on a named port of the container, at an interval."""
    endpoints = monitor["spec"].get("endpoints") or []
    problems = [] if endpoints else ["PodMonitoring has no endpoints"]
    for endpoint in endpoints:
        if endpoint.get("port") not in {p.get("name") for p in container.get("ports", [])}:
            problems.append(f"PodMonitoring port {endpoint.get('port')!r} is not a named port of the container")
        if not endpoint.get("interval"):
            problems.append("PodMonitoring endpoint has no interval (required by monitoring.googleapis.com/v1)")
        if endpoint.get("path", "/metrics") != "/metrics":
            problems.append("PodMonitoring must scrape /metrics")
    return problems


def rules_problems(rules: dict,  # ops/monitoring/rules.yml, parsed
                   monitor: dict,  # the PodMonitoring resource, whose name is the scrape job's
                   ) -> list[str]:
    """Every rule passes `rule_problems`, and `up` is selected by the PodMonitoring's job."""
    problems, job = [], f'job="{monitor["metadata"]["name"]}"'
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            problems += rule_problems(group.get("name"), rule)
            if re.search(r"\bup\{", rule.get("expr", "")) and job not in rule["expr"]:
                problems.append(f"group {group.get('name')}: `up` must be selected by {job}, the PodMonitoring's name")
    return problems


def monitoring_problems(gke: list[dict],  # ops/monitoring/gke-managed-prometheus.yaml, parsed
                        rules: dict,  # ops/monitoring/rules.yml, parsed
                        manifest: list[dict],  # kubernetes-deployment.yaml, parsed
                        ) -> list[str]:
    """The managed-Prometheus manifest against its CRDs' required fields, rules.yml and the Deployment."""
    kinds = {doc["kind"]: doc for doc in gke if doc}
    problems = [f"no {kind} (monitoring.googleapis.com/v1)" for kind in ("PodMonitoring", "Rules")
                if kinds.get(kind, {}).get("apiVersion") != "monitoring.googleapis.com/v1"]
    if problems:
        return problems
    monitor, deployment = kinds["PodMonitoring"], next(d for d in manifest if d and d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    selector = (monitor["spec"].get("selector") or {}).get("matchLabels") or {}
    if not _labels_match(selector, template["metadata"]["labels"]):
        problems.append("PodMonitoring selector does not select the Deployment's pods")
    problems += endpoint_problems(monitor, template["spec"]["containers"][0])
    if kinds["Rules"]["spec"].get("groups") != rules.get("groups"):
        problems.append("the Rules resource's groups differ from ops/monitoring/rules.yml: copy them over")
    return problems + rules_problems(rules, monitor)


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


def _yaml_all(path: Path) -> list[dict]:
    """Every document of a YAML file."""
    return list(yaml.safe_load_all(path.read_text()))


def all_problems() -> list[str]:
    """The problems of the checkout's shipping files, each prefixed with its file."""
    config_text, documents, dockerfile = CONFIG.read_text(), _yaml_all(MANIFEST), DOCKERFILE.read_text()
    config_name = CONFIG.relative_to(ROOT)
    gke = _yaml_all(MONITORING / "gke-managed-prometheus.yaml")
    rules = yaml.safe_load((MONITORING / "rules.yml").read_text())
    pipeline = pipeline_problems(yaml.safe_load(config_text)) + cache_key_problems(config_text)
    return ([f"{config_name}: {p}" for p in pipeline]
            + [f"{MANIFEST.name}: {p}" for p in manifest_problems(documents, dockerfile, GRACEFUL_TIMEOUT)]
            + [f"Dockerfile: {p}" for p in dockerfile_problems(dockerfile, (ROOT / ".dockerignore").read_text())]
            + [f"ops/monitoring: {p}" for p in monitoring_problems(gke, rules, documents)])


def main() -> int:
    """Print the problems (or that there are none); exit status 1 if there are any."""
    problems = all_problems()
    print("\n".join(problems) if problems else "pipeline, manifests and monitoring consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
