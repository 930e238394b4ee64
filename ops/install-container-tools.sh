#!/usr/bin/env bash
# Install and configure what the shipping tests need on Debian 12 as root:
# podman/buildah to build and run the image daemonless, debootstrap to make the
# local base image, curl for the probes (tests/test_container.py), shellcheck
# for the scripts in ops/ (tests/test_shipping.py). Then make the base image
# (ops/make-base-image.sh), since no registry can be reached to pull one.
#
# Idempotent: apt only runs when a package is missing; the configuration is
# rewritten only when it changes; the base image is cached.
#
# The engine configuration suits sandboxed CI machines (a container without
# CAP_SYS_RESOURCE, on a hybrid cgroup v1 hierarchy) as well as ordinary hosts:
#   - runc, not crun: crun refuses hybrid cgroup hierarchies;
#   - cgroupfs, not systemd: there is no systemd to delegate cgroups to;
#   - explicit ulimits: podman's defaults (nofile 1048576, nproc 4194304) exceed
#     the hard limits such a machine grants, and setting them then fails.
set -euo pipefail

if [[ $(id -u) != 0 ]]; then
    echo "install-container-tools.sh: run as root (it installs packages)" >&2
    exit 1
fi

packages=(podman buildah runc netavark aardvark-dns iptables debootstrap curl ca-certificates shellcheck)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A container may not raise a limit above the host's hard limit. nofile follows
# the host; nproc is capped at 32768 because some sandboxes refuse larger
# RLIMIT_NPROC values even below the hard limit, and no test needs more.
nofile=$(ulimit -Hn)
[[ $nofile == unlimited ]] && nofile=1048576
nproc=$(ulimit -Hu)
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768

conf=/etc/containers/containers.conf.d/50-iris-classifier.conf
new_conf=$(cat <<EOF
# Written by ops/install-container-tools.sh (iris_classifier); see the comments there.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)
if [[ ! -f $conf || "$(cat "$conf")" != "$new_conf" ]]; then
    mkdir -p "$(dirname "$conf")"
    printf '%s\n' "$new_conf" >"$conf"
    echo "wrote $conf"
fi

# Fail here, with podman's own message, rather than in the middle of a test.
format='podman {{.Version.Version}}: runtime {{.Host.OCIRuntime.Name}}, cgroups {{.Host.CgroupManager}}'
podman info --format "$format, storage {{.Store.GraphDriverName}}"

bash "$(dirname "$0")/make-base-image.sh"
