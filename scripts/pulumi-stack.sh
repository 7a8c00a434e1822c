#!/usr/bin/env bash
# `make up` / `make preview`: runs the Pulumi CLI on one stack with a local file backend and the passphrase
# secrets provider by default, so no Pulumi Cloud account is needed.
#   scripts/pulumi-stack.sh check            only the checks: the CLI is installed, the stack file exists
#   scripts/pulumi-stack.sh up|preview       the checks, then the CLI (the Makefile installs in between)
set -euo pipefail
cd "$(dirname "$0")/.."
action="${1:-up}"
case "$action" in
  check | up | preview) ;;
  *) echo "error: unknown action '$action' (check, up or preview)" >&2; exit 2 ;;
esac
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

if [[ "$action" == check ]]; then
  exit 0
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
[[ "$venv" == /* ]] || venv="${PWD}/${venv}"
export PATH="${venv}/bin:${PATH}"
pulumi stack select --create --secrets-provider passphrase "${stack}"
exec pulumi "${action}" --stack "${stack}"
