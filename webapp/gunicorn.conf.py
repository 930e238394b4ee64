"""gunicorn settings for the iris classifier, the same in a container and on a laptop.

    gunicorn --config webapp/gunicorn.conf.py webapp.wsgi:app     # from the project root (/app in the image)
    iris-classifier serve                                          # the same, bound to 127.0.0.1:5000

Environment:
    PORT             port to listen on, on all interfaces (default 5000); `-b HOST:PORT` on the command line wins
    WEB_CONCURRENCY  worker processes (default: the CPUs this process may use, container limit included; at least 2)
    IRIS_*           the application's settings (IRIS_MODEL_DIR, IRIS_MAX_BATCH_ROWS, ...; see nbs/03_serving.ipynb)

Made for a read-only root filesystem and a user without a home directory: no control socket (gunicorn
would create it under $HOME), the workers' heartbeat files and the Prometheus metrics files on /dev/shm, and
every log line on stdout.
"""
import gc, glob, math, os, shutil, tempfile

from iris_classifier.core import LOG_FORMAT  # stdlib-only module: cheap to import in the master

def _cpus()->int:
    "CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU limit (a container's `limits.cpu`)"
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        return n if quota == "max" else max(1, min(n, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError): return n

wsgi_app = "webapp.wsgi:app"
bind = [f"0.0.0.0:{os.environ.get('PORT', '5000')}"]
# Predicting is CPU work under the GIL: one process per CPU. At least two, so one slow request cannot hold up
# the liveness probe.
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, _cpus()))
# Each worker imports webapp.wsgi, and so loads and verifies the model, before it accepts a connection.
# Not preloaded: the metrics directory below must be set before the application imports prometheus_client.
preload_app = False

timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 20  # on SIGTERM, finish requests in flight for up to this long (Kubernetes waits 30 s)
keepalive = 5

control_socket_disable = True  # gunicorn >= 25.1 would otherwise create $HOME/.gunicorn/gunicorn.ctl
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # None: the system temp dir (macOS has no /dev/shm)

accesslog = "-"
_handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"}
logconfig_dict = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"plain": {"format": LOG_FORMAT}},
    "handlers": {"stdout": _handler},
    "root": {"level": "WARNING", "handlers": ["stdout"]},
    "loggers": {name: {"level": "INFO", "handlers": ["stdout"], "propagate": False}
                for name in ["gunicorn.error", "gunicorn.access", "iris_classifier"]},
}

def on_starting(server):
    "Give the workers an empty directory for their Prometheus metrics, so /metrics adds up all of them"
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:  # given from outside: start from zero, as the client library requires
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")): os.remove(stale)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = server.iris_metrics_dir = tempfile.mkdtemp(prefix="iris-metrics-", dir=worker_tmp_dir)

def post_worker_init(worker):
    "Once the worker has loaded the application: exempt what is loaded (libraries, the model) from garbage collection"
    # Collections then scan only what requests allocate, not the hundreds of thousands of objects the scientific
    # stack creates at import.
    gc.freeze()

def on_exit(server):
    "Remove the metrics directory this server created"
    if getattr(server, "iris_metrics_dir", None): shutil.rmtree(server.iris_metrics_dir, ignore_errors=True)
