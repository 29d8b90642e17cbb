#!/usr/bin/env bash
# Install the gateway benchmark's peers, each in its own virtual environment outside the repo:
# they are never dependencies of modelyard. Re-running it only adds what is missing.
#
#   bash benchmarks/install_peers.sh            # both peers
#   bash benchmarks/install_peers.sh litellm    # one of them
#
# Then .venv/bin/python benchmarks/gateway_bench.py finds them there (its --peers-dir).
# Versions: VLLM_ROUTER_VERSION and LITELLM_SPEC override the pinned ones below.
set -euo pipefail

root="${BENCH_PEERS:-$HOME/.cache/modelyard/bench}"
python="${PYTHON:-python3}"
vllm_router="vllm-router==${VLLM_ROUTER_VERSION:-0.1.17}"  # the Rust router (a compiled module) behind the `vllm-router` command
litellm="${LITELLM_SPEC:-litellm[proxy]}"

install() {  # install NAME SPEC: a venv at $root/NAME-venv with SPEC in it
  local venv="$root/$1-venv"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$2"
  echo "$1: $("$venv/bin/pip" show "${2%%[=\[]*}" | sed -n 's/^Version: //p') in $venv"
}

mkdir -p "$root"
[ $# -gt 0 ] || set -- vllm-router litellm
for name in "$@"; do
  case "$name" in
    vllm-router) install vllm-router "$vllm_router" ;;
    litellm) install litellm "$litellm" ;;
    *) echo "unknown peer: $name (vllm-router, litellm)" >&2; exit 2 ;;
  esac
done
