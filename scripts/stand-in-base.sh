#!/usr/bin/env bash
# Builds, for buildah, a stand-in for the `python:*` base images the Dockerfiles name, from Debian
# packages, on machines that can reach a Debian mirror but not Docker Hub. It proves the Dockerfiles'
# own steps (COPY paths, installs, user, entry point), not the real base image.
#
#   scripts/stand-in-base.sh            # debootstrap once (cached), then import under every base name
#
# The rootfs is cached outside the repository: $STAND_IN_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/cloudevents-connectors/bookworm-rootfs). Needs root, buildah and
# debootstrap. Honours buildah's STORAGE_DRIVER (e.g. vfs where overlay is unavailable).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in buildah debootstrap; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is not installed (Debian/Ubuntu: apt-get install buildah debootstrap)" >&2
    exit 127
  fi
done

cache="${STAND_IN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudevents-connectors/bookworm-rootfs}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The CA bundle pip uses here (a proxy with its own CA may sit between this machine and PyPI).
ca_bundle="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"

if [[ ! -f "$cache/.complete" ]]; then
  rm -rf "$cache"
  mkdir -p "$cache"
  echo "debootstrap bookworm into $cache (a few minutes, once)" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$cache" "$mirror" >&2
  # The official images let pip install into the system Python, and name it /usr/local/bin/python.
  rm -f "$cache"/usr/lib/python3.*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/python3 "$cache/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$cache/usr/local/bin/pip"
  cp "$ca_bundle" "$cache/etc/ssl/certs/ca-certificates.crt"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$cache/etc/pip.conf"
  rm -rf "$cache"/var/cache/apt/archives/*.deb
  touch "$cache/.complete"
fi

# Every base the Dockerfiles name (python:<tag>), under Docker Hub's full name.
bases=$(sed -n 's/^FROM \(python:[^ ]*\).*/\1/p' runtime/*/Dockerfile | sort -u)
container=$(buildah from scratch)
mount=$(buildah mount "$container")
cp -a "$cache"/. "$mount"/
rm -f "$mount/.complete"
buildah umount "$container" >/dev/null
buildah config --env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$container"
first=""
for base in $bases; do
  if [[ -z "$first" ]]; then
    first="docker.io/library/$base"
    buildah commit --quiet "$container" "$first" >/dev/null
  else
    buildah tag "$first" "docker.io/library/$base"
  fi
  echo "stand-in base: docker.io/library/$base" >&2
done
buildah rm "$container" >/dev/null
