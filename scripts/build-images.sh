#!/usr/bin/env bash
# `make images`: builds both runtime images from the repository root with docker, else buildah.
#   IMAGE_PREFIX   name prefix (default ghcr.io/cloudevents-connectors/, the components' default
#                  runtime.image, so a local cluster such as kind can load and run them as they are)
#   IMAGE_TAG      tag (default: the package version in pyproject.toml)
#   BUILDER        docker or buildah, to choose when both exist
# Prints the built references, one a line, on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

builder="${BUILDER:-}"
docker_note=""
if [[ -z "$builder" ]]; then
  # docker only counts with a reachable daemon; buildah needs none.
  if command -v docker >/dev/null 2>&1; then
    if docker info >/dev/null 2>&1; then
      builder=docker
    else
      docker_note=" (docker is installed, but its daemon is not reachable)"
    fi
  fi
  if [[ -z "$builder" ]] && command -v buildah >/dev/null 2>&1; then
    builder=buildah
  fi
fi
if [[ -z "$builder" ]]; then
  cat >&2 <<MSG
error: \`make images\` needs docker (with its daemon running) or buildah; neither is usable${docker_note}.
  Docker:  https://docs.docker.com/engine/install/
  buildah: apt-get install buildah   (no daemon; scripts/stand-in-base.sh where Docker Hub is unreachable)
MSG
  exit 127
fi
if ! command -v "$builder" >/dev/null 2>&1; then
  echo "error: BUILDER=$builder is not installed" >&2
  exit 127
fi

prefix="${IMAGE_PREFIX-ghcr.io/cloudevents-connectors/}"
tag="${IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)}"

for image in alibaba-oss-target relay; do
  dockerfile="runtime/${image//-/_}/Dockerfile"
  ref="${prefix}${image}:${tag}"
  echo "== $builder: $ref from $dockerfile" >&2
  case "$builder" in
    docker) docker build --file "$dockerfile" --tag "$ref" . >&2 ;;
    buildah) buildah build --layers --file "$dockerfile" --tag "$ref" . >&2 ;;
    *) echo "error: BUILDER must be docker or buildah, not $builder" >&2; exit 2 ;;
  esac
  echo "$ref"
done
