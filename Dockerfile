# Serving image for the iris classifier: the project's wheel under granian,
# with the model the pipeline's training step produced (artifacts/model/ in the
# context).
#
#   bash ops/build-image.sh iris-classifier:dev
#
# (builds the wheel into the context's dist/, sets the labels and the optional
# CA secret, and for podman the docker image format, since the OCI format drops
# HEALTHCHECK).
#
# No "# syntax=" line on purpose: it would make BuildKit pull a frontend image
# from a registry. RUN --mount is supported by the frontend built into Docker
# 23+ and by buildah/podman.

# Both stages use the same base so the venv's interpreter symlink
# (/opt/venv/bin/python -> the base's python3) stays valid in the runtime
# stage. Override to build on a local base where no registry is reachable
# (ops/make-base-image.sh makes one).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder

# Bumped deliberately, together with the lock, not picked up implicitly.
ARG UV_VERSION=0.13.9

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# The optional secret "ca" (PEM) is appended to the system roots for this step
# only, for builds behind a TLS-inspecting proxy. It lives on a tmpfs, so it is
# in no layer. uv comes from the package index rather than a registry image, so
# the build pulls nothing but the base. The libraries' own test suites (about
# 50 MB, a fifth of the environment) are never imported at run time.
COPY requirements.lock ./
RUN --mount=type=secret,id=ca \
    --mount=type=tmpfs,target=/tmp \
    --mount=type=cache,target=/root/.cache \
    set -eu; \
    if [ -s /run/secrets/ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/ca > /tmp/ca.pem; \
        export SSL_CERT_FILE=/tmp/ca.pem PIP_CERT=/tmp/ca.pem; \
    fi; \
    python3 -m venv /opt/uv; \
    /opt/uv/bin/pip install --disable-pip-version-check --no-cache-dir "uv==${UV_VERSION}"; \
    python3 -m venv --without-pip "$VIRTUAL_ENV"; \
    /opt/uv/bin/uv pip install --require-hashes -r requirements.lock; \
    find "$VIRTUAL_ENV" -depth -type d -name tests -exec rm -rf {} +

# The project itself, in a layer of its own: the wheel ops/build-image.sh built
# on the host, so no build backend comes from the index. --no-deps and
# --no-index: everything it needs is the hash-pinned set above, and nothing
# else can be fetched. Byte-compiled like the rest (UV_COMPILE_BYTECODE), so
# the read-only runtime never writes bytecode.
COPY dist/iris_classifier-*.whl /src/dist/
RUN --mount=type=tmpfs,target=/tmp \
    /opt/uv/bin/uv pip install --no-cache --no-deps --no-index /src/dist/iris_classifier-*.whl


FROM ${BASE_IMAGE}

ARG VCS_REF=unknown
ARG VERSION=0.0.0
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="iris-classifier" \
      org.opencontainers.image.description="Iris species classifier: web page and JSON API" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.version="${VERSION}"

# HOME points at /tmp, the one writable place (an emptyDir in Kubernetes, a
# tmpfs under podman): the UID has no home directory. Prediction records and
# logs go to stdout as JSON lines, which Cloud Logging parses.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PORT=5000 \
    IRIS_MODEL_DIR=/app/artifacts/model \
    IRIS_RECORDS=stdout \
    IRIS_LOG_FORMAT=json

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY artifacts/model/ /app/artifacts/model/

# Fixed numeric UID/GID so Kubernetes' runAsNonRoot can verify it without a
# passwd entry; files stay root-owned, so the app cannot modify itself.
USER 10001:10001
EXPOSE 5000

# Docker and podman (docker format) only; Kubernetes uses the manifest's probes.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '5000'), timeout=2)"]

# Exec form: granian's main process is PID 1 and gets SIGTERM directly for a
# graceful stop; it binds to $PORT with $WEB_CONCURRENCY workers. gunicorn, the
# other server the wheel carries, is one override away:
#   gunicorn --config python:iris_classifier.gunicorn_conf
CMD ["python", "-m", "iris_classifier.granian_conf"]
