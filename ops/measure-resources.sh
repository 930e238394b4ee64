#!/usr/bin/env bash
# Measure the serving container's CPU and memory at idle and under a small,
# bounded load on loopback, to size the requests and limits in
# kubernetes-deployment.yaml. Runs the image as ops/container-smoke.sh does.
#
#   ops/measure-resources.sh IMAGE_REF [REQUESTS] [CONCURRENCY]
#
# Prints idle and peak memory, mean and peak CPU (in cores, from the
# container's cumulative CPU time, not podman's since-start average) and the
# request rate reached. Uses podman.
set -euo pipefail

image=${1:?usage: $0 IMAGE_REF [REQUESTS] [CONCURRENCY]}
requests=${2:-3000}
concurrency=${3:-8}
engine=podman
name="iris-measure-$$"
samples=$(mktemp)
trap '"$engine" rm -f "$name" >/dev/null 2>&1 || true; rm -f "$samples"' EXIT

"$engine" run --detach --name "$name" --user 10001:10001 --read-only --cap-drop ALL \
    --security-opt no-new-privileges --tmpfs "/tmp:rw,nosuid,nodev,size=64m" \
    --no-healthcheck --publish 127.0.0.1::5000 "$image" >/dev/null
addr=$("$engine" port "$name" 5000/tcp | head -n1)
base="http://${addr/0.0.0.0/127.0.0.1}"
for _ in $(seq 120); do
    curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null && break
    sleep 0.5
done

# One line per sample: time (s), cumulative CPU time (ns), memory in use.
sample() {
    echo "$(date +%s.%N) $("$engine" stats --no-stream --format '{{.CPUNano}} {{.MemUsage}}' "$name" | head -n1)"
}
sleep 3
echo "idle: memory $(sample | cut -d' ' -f3)"

(while true; do sample >>"$samples"; sleep 1; done) &
sampler=$!

python3 - "$base" "$requests" "$concurrency" <<'EOF'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

base, total, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = json.dumps({"instances": [
    {"sepal_length": 5.1 + i / 10, "sepal_width": 3.5, "petal_length": 1.4 + i / 5, "petal_width": 0.2 + i / 10}
    for i in range(10)]}).encode()

def predict(_):
    request = urllib.request.Request(f"{base}/api/predict", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status

start = time.monotonic()
with ThreadPoolExecutor(workers) as pool:
    statuses = list(pool.map(predict, range(total)))
elapsed = time.monotonic() - start
print(f"load: {total} requests of 10 instances, concurrency {workers}: "
      f"{total / elapsed:.0f} req/s, {statuses.count(200)} OK")
EOF

kill "$sampler"
wait "$sampler" 2>/dev/null || true
echo "after load: memory $(sample | cut -d' ' -f3)"
# Memory like "231.5MB"; CPU in cores between consecutive samples.
awk '{
    mem = $3; unit = mem; gsub(/[0-9.]/, "", unit); mem += 0
    if (unit ~ /^G/) mem *= 1000; else if (unit ~ /^k/) mem /= 1000
    if (mem > mpeak) mpeak = mem
    if (NR > 1) { cores = ($2 - cpu) / (($1 - t) * 1e9); n++; sum += cores; if (cores > peak) peak = cores }
    t = $1; cpu = $2
} END {
    printf "under load (%d intervals): CPU mean %.2f cores, peak %.2f cores; memory peak %.0f MB\n",
        n, sum / n, peak, mpeak
}' "$samples"
