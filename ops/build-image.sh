#!/usr/bin/env bash
# Build the serving image: the one build command for CI (docker) and local
# runs and tests (podman), so both produce the same image.
#
#   ops/build-image.sh IMAGE_REF [extra build options...]
#
# The context must hold the trained model in artifacts/model/ (`make train`).
#
# Environment:
#   CONTAINER_ENGINE  docker | podman (default: docker if its daemon answers, else podman)
#   BUILD_CONTEXT     directory to build from (default: the repository root)
#   BASE_IMAGE        base image override, e.g. localhost/iris-base:bookworm
#   CA_BUNDLE         PEM file with extra CA certificates to trust while
#                     installing packages (TLS-inspecting proxies); passed as
#                     a build secret, so it never lands in a layer
#   VCS_REF           revision label (default: CIRCLE_SHA1, else git HEAD)
#   SOURCE_URL        source label (default: CIRCLE_REPOSITORY_URL, else origin)
#
# Prints the build time in seconds as the last line: "build-seconds N".
set -euo pipefail

if (($# < 1)); then
    echo "usage: $0 IMAGE_REF [extra build options...]" >&2
    exit 2
fi
image=$1
shift

repo=$(cd "$(dirname "$0")/.." && pwd)
context=${BUILD_CONTEXT:-$repo}
engine=${CONTAINER_ENGINE:-$(docker info >/dev/null 2>&1 && echo docker || echo podman)}

if [[ ! -f "$context/requirements.lock" ]]; then
    echo "build-image.sh: $context/requirements.lock is missing (make lock)" >&2
    exit 1
fi
if [[ ! -f "$context/artifacts/model/metadata.json" ]]; then
    echo "build-image.sh: no trained model in $context/artifacts/model (make train)" >&2
    exit 1
fi

vcs_ref=${VCS_REF:-${CIRCLE_SHA1:-$(git -C "$repo" rev-parse --verify -q HEAD 2>/dev/null || echo unknown)}}
source_url=${SOURCE_URL:-${CIRCLE_REPOSITORY_URL:-$(git -C "$repo" remote get-url origin 2>/dev/null || true)}}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$context/iris_classifier/__init__.py")

args=(
    --file "$context/Dockerfile"
    --tag "$image"
    --build-arg "VCS_REF=$vcs_ref"
    --build-arg "VERSION=${version:-0.0.0}"
    --build-arg "SOURCE_URL=$source_url"
)
[[ -n "${BASE_IMAGE:-}" ]] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[[ -n "${CA_BUNDLE:-}" ]] && args+=(--secret "id=ca,src=$CA_BUNDLE")
# buildah writes OCI images by default, and the OCI format has no HEALTHCHECK.
[[ $engine == podman ]] && args+=(--format docker)

start=$(date +%s)
"$engine" build "${args[@]}" "$@" "$context"
echo "build-seconds $(($(date +%s) - start))"
