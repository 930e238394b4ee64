#!/usr/bin/env bash
# Build a local stand-in for the python:3.11-slim base image, for machines that
# can reach the Debian archive but no container registry.
#
# Debian 12's python3 is 3.11, the version the project targets, so a minimal
# bookworm with python3, python3-venv (ensurepip, to bootstrap uv) and
# ca-certificates is enough for the Dockerfile:
#
#   podman build --build-arg BASE_IMAGE=localhost/iris-base:bookworm ...
#
# Idempotent: does nothing when the image already exists (FORCE=1 rebuilds).
# Needs root and debootstrap (ops/install-container-tools.sh installs it).
#
# Environment:
#   BASE_IMAGE     image name to create           (default localhost/iris-base:bookworm)
#   DEBIAN_MIRROR  archive to debootstrap from    (default: the first bookworm
#                  archive this machine's apt sources use, so that whatever
#                  mirror or proxy the host is set up for is used here too)
#   FORCE=1        rebuild even if the image exists
set -euo pipefail

image="${BASE_IMAGE:-localhost/iris-base:bookworm}"
suite=bookworm

if [[ "${FORCE:-0}" != 1 ]] && podman image exists "$image"; then
    echo "base image $image already exists (FORCE=1 rebuilds)"
    exit 0
fi

if [[ $(id -u) != 0 ]]; then
    echo "make-base-image.sh: debootstrap needs root" >&2
    exit 1
fi

# The mirror comes from the host's apt configuration (deb822 or one-line
# format) rather than being written here, so the script follows the host.
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
    mirror=$(
        {
            # deb822: a stanza's URIs line followed by a Suites line naming the suite.
            awk -v suite="$suite" '
                /^URIs:/   { uri = $2 }
                /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri != "") { print uri; exit } }
                /^$/       { uri = "" }
            ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
            # one-line format: deb [opts] URI SUITE COMPONENTS...
            awk -v suite="$suite" '
                $1 == "deb" { sub(/\[[^]]*\] */, ""); if ($3 == suite) { print $2; exit } }
            ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
        } | head -n1
    )
fi
if [[ -z "$mirror" ]]; then
    echo "make-base-image.sh: no $suite archive in the apt sources; set DEBIAN_MIRROR" >&2
    exit 1
fi

rootfs=$(mktemp -d /var/tmp/iris-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrapping $suite from $mirror into $rootfs"
# minbase: only Essential + apt; the three packages below are all the image needs.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 40 "$rootfs.log" >&2
    rm -f "$rootfs.log"
    exit 1
}
rm -f "$rootfs.log"

# Trim what a slim image would not carry: package caches and lists, docs, man
# pages, and locales other than C.UTF-8 (built into glibc).
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*

# Same environment as the official image, so the Dockerfile behaves the same
# on either base.
tar --numeric-owner -C "$rootfs" -c . |
    podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        --message "debootstrap $suite minbase + python3, python3-venv, ca-certificates" \
        - "$image" >/dev/null

podman image inspect --format '{{.Id}} {{.Size}}' "$image" |
    awk -v img="$image" '{ printf "created %s (%s, %.0f MB)\n", img, substr($1, 1, 12), $2 / 1e6 }'
