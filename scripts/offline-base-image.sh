#!/usr/bin/env bash
# Builds a stand-in for python:3.11-slim from Debian packages only, for hosts that reach a
# Debian mirror but no container registry. Then:
#   podman build --format docker --build-arg PYTHON_IMAGE=localhost/python-debian:3.11 -t community-platform .
#
# The result behaves like the official image where the Dockerfile relies on it: `python`,
# `python3` and `pip` on PATH, `pip install` as root allowed system-wide (Debian's
# EXTERNALLY-MANAGED marker is removed, as PEP 668 allows for container images), CA
# certificates, groupadd/useradd, C.UTF-8, no docs, man pages or apt lists.
#
# Usage (as root): scripts/offline-base-image.sh [IMAGE]     default localhost/python-debian:3.11
# Environment: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default deb.debian.org), ENGINE
# (podman or docker; podman and buildah share their image store), WORK_DIR (scratch space
# for the root file system, removed afterwards; default /var/tmp).
set -euo pipefail

IMAGE="${1:-localhost/python-debian:3.11}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
ENGINE="${ENGINE:-podman}"
PACKAGES=python3.11,python3-venv,python3-pip,python-is-python3,ca-certificates

[ "$(id -u)" = 0 ] || { echo "run as root: debootstrap and chroot need it" >&2; exit 1; }
for cmd in debootstrap unshare "$ENGINE"; do
  command -v "$cmd" >/dev/null || { echo "missing: $cmd (apt-get install -y debootstrap $ENGINE)" >&2; exit 1; }
done

rootfs="$(mktemp -d "${WORK_DIR:-/var/tmp}/python-debian-rootfs.XXXXXX")"
chmod 755 "$rootfs"  # the image's / (mktemp makes it private)
trap 'rm -rf --one-file-system "$rootfs"' EXIT

# Like debian:bookworm-slim: no documentation, man pages or translations (copyrights stay).
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF

debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR"

# Security and point-release updates, in a private mount namespace so /proc never leaks.
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
unshare --mount --propagation private sh -euc '
  mount -t proc proc "$1/proc"
  chroot "$1" env DEBIAN_FRONTEND=noninteractive sh -euc "apt-get update -q && apt-get -y -q upgrade && apt-get clean"
' sh "$rootfs"

rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/tmp/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/*
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"
find "$rootfs/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} +

version="$(chroot "$rootfs" python -c 'import platform; print(platform.python_version())')"
chroot "$rootfs" sh -c 'python --version && pip --version && python -m venv --help >/dev/null' >/dev/null

tar -C "$rootfs" --numeric-owner --xattrs -c . | "$ENGINE" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV PYTHON_VERSION=$version" \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with Python $version from Debian packages\"" \
  --change 'CMD ["python3"]' \
  - "$IMAGE"
echo "built $IMAGE (Python $version)"
