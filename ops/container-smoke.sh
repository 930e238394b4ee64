#!/usr/bin/env bash
# Smoke-test a built serving image the way Kubernetes runs it
# (kubernetes-deployment.yaml): fixed non-root UID, read-only root filesystem,
# all capabilities dropped, no privilege escalation, a tmpfs where the manifest
# mounts an emptyDir. Used by tests/test_container.py (podman) and by the
# CircleCI build job (docker) before the image is pushed.
#
#   ops/container-smoke.sh IMAGE_REF [REPORT_JSON]
#
# Checks: ready within READY_TIMEOUT s; a prediction through the published
# port on loopback; the HEALTHCHECK passes; the server does not run as root;
# a worker killed is replaced; SIGTERM stops it cleanly (exit code 0) well
# inside the grace period.
# Writes a JSON report (time to ready, memory, stop time, image size).
#
# Environment: CONTAINER_ENGINE (docker | podman; default as ops/build-image.sh),
# READY_TIMEOUT (default 60).
set -euo pipefail

if (($# < 1)); then
    echo "usage: $0 IMAGE_REF [REPORT_JSON]" >&2
    exit 2
fi
image=$1
report=${2:-}
engine=${CONTAINER_ENGINE:-$(docker info >/dev/null 2>&1 && echo docker || echo podman)}
ready_timeout=${READY_TIMEOUT:-60}
uid=10001                 # runAsUser in kubernetes-deployment.yaml
grace=30                  # terminationGracePeriodSeconds there
name="iris-smoke-$$"

fail() {
    echo "SMOKE FAIL: $*" >&2
    echo "--- container log ---" >&2
    "$engine" logs "$name" 2>&1 | tail -n 40 >&2 || true
    exit 1
}
cleanup() { "$engine" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

run_opts=(
    --detach --name "$name"
    --user "$uid:$uid"
    --read-only
    --cap-drop ALL
    --security-opt no-new-privileges
    --tmpfs "/tmp:rw,nosuid,nodev,size=64m"
    --publish 127.0.0.1::5000
    # podman schedules healthchecks with systemd timers, which CI containers
    # lack: the image's HEALTHCHECK command is run by hand below instead.
    --no-healthcheck
)

started=$(date +%s.%N)
"$engine" run "${run_opts[@]}" "$image" >/dev/null
addr=$("$engine" port "$name" 5000/tcp | head -n1)
addr=${addr/0.0.0.0/127.0.0.1}
base="http://$addr"

ready=""
deadline=$(($(date +%s) + ready_timeout))
while (($(date +%s) < deadline)); do
    if curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null; then
        ready=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        break
    fi
    [[ $("$engine" inspect --format '{{.State.Running}}' "$name") == true ]] ||
        fail "container exited before it was ready"
    sleep 0.5
done
[[ -n $ready ]] || fail "/readyz not ready within ${ready_timeout}s"
echo "ready after ${ready}s at $base"

curl -fsS --max-time 5 "$base/healthz" >/dev/null || fail "/healthz"

body='{"instances": [
  {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
  {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}]}'
prediction=$(curl -fsS --max-time 10 -H 'Content-Type: application/json' -d "$body" "$base/api/predict") ||
    fail "POST /api/predict"
python3 - "$prediction" <<'EOF' || fail "unexpected prediction: $prediction"
import json, sys
reply = json.loads(sys.argv[1])
predictions = reply["predictions"]
assert len(predictions) == 2, predictions
assert "setosa" in json.dumps(predictions[0]), predictions[0]
assert reply.get("model_version"), reply
EOF
echo "prediction ok: $prediction"

# PID 1 is the server's main process (exec-form CMD); its workers inherit its UID.
uids=$("$engine" exec "$name" sh -c 'grep -hs "^Uid:" /proc/[0-9]*/status; true' |
       awk '{ print $2 }' | sort -u | tr '\n' ' ')
[[ -n $uids && " $uids " != *" 0 "* ]] || fail "a process runs as root (uids: $uids)"
echo "process uids: $uids"

healthcheck=$("$engine" image inspect --format '{{json .Config.Healthcheck}}' "$image")
mapfile -t healthcheck_cmd < <(python3 -c '
import json, sys
test = (json.loads(sys.argv[1]) or {}).get("Test") or ["NONE"]
assert test[0] == "CMD", test
print("\n".join(test[1:]))' "$healthcheck") || fail "image has no exec-form HEALTHCHECK: $healthcheck"
"$engine" exec "$name" "${healthcheck_cmd[@]}" || fail "HEALTHCHECK command failed"

mem=$("$engine" stats --no-stream --format '{{.MemUsage}}' "$name" | head -n1)

# A worker that dies is replaced: kill one (a child of PID 1) and wait for a
# new one beside the survivor, still ready.
workers() { "$engine" exec "$name" sh -c 'cat /proc/1/task/*/children'; }
read -r -a before <<<"$(workers)"
((${#before[@]} >= 2)) || fail "expected at least 2 workers, found: ${before[*]}"
"$engine" exec "$name" sh -c "kill -KILL ${before[0]}" || fail "could not kill worker ${before[0]}"
replaced=""
for _ in $(seq 60); do
    read -r -a now <<<"$(workers)"
    if ((${#now[@]} == ${#before[@]})) && [[ " ${now[*]} " != *" ${before[0]} "* ]] &&
        curl -fsS -o /dev/null --max-time 2 "$base/readyz"; then
        replaced=yes
        break
    fi
    sleep 0.5
done
[[ -n $replaced ]] || fail "worker ${before[0]} was not replaced (workers now: ${now[*]})"
echo "worker ${before[0]} killed and replaced: ${now[*]}"

stop_started=$(date +%s.%N)
"$engine" stop --time "$grace" "$name" >/dev/null
stop_seconds=$(awk -v a="$stop_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
exit_code=$("$engine" inspect --format '{{.State.ExitCode}}' "$name")
# 137 would mean SIGKILL after the grace period: in-flight requests cut off.
[[ $exit_code == 0 ]] || fail "exit code $exit_code after SIGTERM (not a graceful stop)"
echo "stopped gracefully in ${stop_seconds}s"

size=$("$engine" image inspect --format '{{.Size}}' "$image")
if [[ -n $report ]]; then
    cat >"$report" <<EOF
{
  "image": "$image",
  "engine": "$engine",
  "image_size_bytes": $size,
  "seconds_to_ready": $ready,
  "memory_usage_idle": "$mem",
  "process_uids": "${uids% }",
  "stop_seconds": $stop_seconds,
  "exit_code": $exit_code
}
EOF
fi
echo "smoke ok: image $((size / 1000000)) MB, ready ${ready}s, memory $mem, stop ${stop_seconds}s"
