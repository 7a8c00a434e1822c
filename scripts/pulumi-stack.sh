#!/usr/bin/env bash
# `make up` / `make preview`: runs the Pulumi CLI on one stack with a local file backend and the passphrase
# secrets provider by default, so no Pulumi Cloud account is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
action="${1:-up}"
stack="${STACK:-dev}"
venv="${VENV:-.venv}"

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'MSG'
error: the `pulumi` CLI is not installed (or not on PATH).
Install it, then run this command again:
  curl -fsSL https://get.pulumi.com | sh        # Linux/macOS, then open a new shell
  brew install pulumi/tap/pulumi                 # macOS with Homebrew
  choco install pulumi                           # Windows
See https://www.pulumi.com/docs/install/
MSG
  exit 127
fi

if [[ ! -f "stacks/Pulumi.${stack}.yaml" ]]; then
  echo "error: no stack file stacks/Pulumi.${stack}.yaml (stacks here: $(ls stacks | sed -n 's/^Pulumi\.\(.*\)\.yaml$/\1/p' | tr '\n' ' '))" >&2
  exit 2
fi

# State stays on this machine unless the user chose another backend.
if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://${PWD}/.pulumi-state"
fi
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  echo "note: PULUMI_CONFIG_PASSPHRASE is not set; pulumi will ask for the passphrase that encrypts this stack's secrets." >&2
fi

# The Python program runs in the project's virtualenv (Pulumi.yaml names it).
export PATH="${PWD}/${venv}/bin:${PATH}"
pulumi stack select --create --secrets-provider passphrase "${stack}"
exec pulumi "${action}" --stack "${stack}"
