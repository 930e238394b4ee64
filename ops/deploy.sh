#!/usr/bin/env bash
# Roll kubernetes-deployment.yaml out to the current kubectl context with the
# given image, wait for the rollout, and roll back if it does not complete.
#
#   ops/deploy.sh IMAGE_REF [MODEL_DIR]
#
# IMAGE_REF must carry an immutable tag (the commit SHA in CI) or a digest:
# the tag is what changes the pod template and so triggers the rollout.
# MODEL_DIR (default: the checkout's artifacts/model, which the image was built
# with) names the model version that the pod template's annotation
# iris-classifier/model-version records: the model in force, for
# ops/retrain.sh, also after a `kubectl rollout undo`.
#
# Exit status: 0 rolled out, 1 the rollout failed (rolled back when there was
# an earlier revision) or the manifest could not be filled in, 2 usage: no or
# a mutable tag, no published model in MODEL_DIR. Needs jq.
#
# Environment: K8S_NAMESPACE (default: the context's namespace),
# ROLLOUT_TIMEOUT (default 5m; the manifest's progressDeadlineSeconds is 300).
set -euo pipefail

if (($# < 1 || $# > 2)); then
    echo "usage: $0 IMAGE_REF [MODEL_DIR]" >&2
    exit 2
fi
image=$1
root=$(cd "$(dirname "$0")/.." && pwd)
model=${2:-$root/artifacts/model}
version=$(jq -er .model_version "$model/metadata.json" 2>/dev/null) ||
    { echo "deploy: no published model in $model (its version goes on the pod template)" >&2; exit 2; }
name_and_tag=${image##*/}
if [[ $image != *@sha256:* ]]; then
    [[ $name_and_tag == *:* ]] || { echo "deploy: $image has no tag" >&2; exit 2; }
    [[ ${name_and_tag##*:} != latest ]] || { echo "deploy: refusing the mutable tag :latest" >&2; exit 2; }
fi

manifest=$root/kubernetes-deployment.yaml
ns=()
[[ -n "${K8S_NAMESPACE:-}" ]] && ns=(--namespace "$K8S_NAMESPACE")
timeout=${ROLLOUT_TIMEOUT:-5m}
deployment=deployment/iris-classifier

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
annotation=iris-classifier/model-version
sed -e "s|image: IMAGE_REF$|image: $image|" \
    -e "s|$annotation: MODEL_VERSION$|$annotation: \"$version\"|" "$manifest" >"$rendered"
if grep -qE 'image: IMAGE_REF|model-version: MODEL_VERSION' "$rendered" || ! grep -qF "image: $image" "$rendered"; then
    echo "deploy: could not set the image in $manifest" >&2
    exit 1
fi

# Keep the autoscaler's live count when it is above the manifest's floor, so
# the apply does not scale a busy deployment down.
live=$(kubectl "${ns[@]}" get "$deployment" -o jsonpath='{.spec.replicas}' 2>/dev/null || true)
floor=$(sed -n 's/^  replicas: \([0-9]*\)$/\1/p' "$rendered")
if [[ $live =~ ^[0-9]+$ && -n $floor ]] && ((live > floor)); then
    sed -i "s/^  replicas: $floor\$/  replicas: $live/" "$rendered"
fi

# The revision to return to if this rollout fails (none on a first deploy).
revision_path='{.metadata.annotations.deployment\.kubernetes\.io/revision}'
previous=$(kubectl "${ns[@]}" get "$deployment" -o jsonpath="$revision_path" 2>/dev/null || true)

kubectl "${ns[@]}" apply -f "$rendered"

if kubectl "${ns[@]}" rollout status "$deployment" --timeout="$timeout"; then
    kubectl "${ns[@]}" get "$deployment" -o wide
    echo "deployed $image"
    exit 0
fi

echo "deploy: rollout of $image did not complete within $timeout" >&2
kubectl "${ns[@]}" describe "$deployment" | tail -n 30 >&2 || true
kubectl "${ns[@]}" get pods -l app.kubernetes.io/name=iris-classifier -o wide >&2 || true
kubectl "${ns[@]}" get events --sort-by=.lastTimestamp | tail -n 20 >&2 || true
if [[ -n $previous ]]; then
    echo "deploy: rolling back to revision $previous" >&2
    kubectl "${ns[@]}" rollout undo "$deployment" --to-revision="$previous"
    kubectl "${ns[@]}" rollout status "$deployment" --timeout="$timeout" ||
        echo "deploy: the rollback did not complete either; the cluster needs attention" >&2
else
    echo "deploy: first deployment, nothing to roll back to" >&2
fi
exit 1
