#!/usr/bin/env bash
# Build the serving image: the one build command for CI (docker) and local
# runs and tests (podman), so both produce the same image.
#
#   ops/build-image.sh IMAGE_REF [extra build options...]
#
# The context must hold the trained model in artifacts/model/ (`make train`).
# The project's wheel is built here, on the host, and lent to the context's
# dist/ for the build: the image installs it next to the hash-pinned
# requirements.lock, without a build backend from the index.
#
# Environment:
#   CONTAINER_ENGINE  docker | podman (default: docker if its daemon answers, else podman)
#   BUILD_CONTEXT     directory to build from (default: the repository root)
#   UV                uv, which builds the wheel (default: .tools/bin/uv, which
#                     the Makefile installs at its pinned version if missing)
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

start=$(date +%s)

# From an sdist in a fresh directory (uv build's default), so no stale build/
# tree reaches the wheel. SOURCE_DATE_EPOCH makes the wheel byte-identical
# while the code is, which keeps the image's install layer cached.
uv=${UV:-$repo/.tools/bin/uv}
[[ -n ${UV:-} || -x $uv ]] || make -C "$repo" --no-print-directory .tools/bin/uv >&2
wheels=$(mktemp -d)
cleanup() { rm -rf "$wheels" "$context"/dist/iris_classifier-*.whl; rmdir "$context/dist" 2>/dev/null || true; }
trap cleanup EXIT
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)} \
    UV_PYTHON_DOWNLOADS=never "$uv" build --quiet --out-dir "$wheels" "$repo"
wheel=$(cd "$wheels" && echo iris_classifier-*.whl)
version=${wheel#iris_classifier-}
version=${version%%-*}
# Earlier wheels of the project in dist/ are build output like this one: the
# Dockerfile's dist/iris_classifier-*.whl must match this one alone.
mkdir -p "$context/dist"
rm -f "$context"/dist/iris_classifier-*.whl
cp "$wheels/$wheel" "$context/dist/"

args=(
    --file "$context/Dockerfile"
    --tag "$image"
    --build-arg "VCS_REF=$vcs_ref"
    --build-arg "VERSION=$version"
    --build-arg "SOURCE_URL=$source_url"
)
[[ -n "${BASE_IMAGE:-}" ]] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[[ -n "${CA_BUNDLE:-}" ]] && args+=(--secret "id=ca,src=$CA_BUNDLE")
# buildah writes OCI images by default, and the OCI format has no HEALTHCHECK.
[[ $engine == podman ]] && args+=(--format docker)

"$engine" build "${args[@]}" "$@" "$context"
echo "build-seconds $(($(date +%s) - start))"
