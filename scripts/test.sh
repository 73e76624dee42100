#!/usr/bin/env bash
# The one test command (README, CI): installs what it needs, then type-check, lint, layer and
# cycle check, unit tests, the tiny image, and the end-to-end tests with real VMs.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

if [ "$(id -u)" != 0 ]; then
  echo "the test command needs root: it installs packages and creates tap devices (run it with sudo)" >&2
  exit 1
fi

step "npm packages"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

step "host packages (falcon setup)"
node bin/falcon.js setup

step "Chromium for the web view's browser tests"
# A test-only dependency: playwright-core drives Debian's Chromium, never a browser of its own.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi

step "packages the OCI tests use (umoci, containerd, runc)"
# Test-only: the OCI e2e checks exports with umoci and imports them into a throwaway containerd.
missing=()
for pkg in umoci containerd runc; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

step "type-check"
npx tsc --noEmit
step "lint"
npx eslint .
step "layers and import cycles"
npx depcruise src --config .dependency-cruiser.cjs

step "unit tests"
npx vitest run --project unit

step "base image tiny"
# Built when missing, rebuilt when its recipe has changed since.
if ! node bin/falcon.js image inspect tiny --json 2>/dev/null | node -e 'process.exit(JSON.parse(require("fs").readFileSync(0, "utf8")).staleRecipe ? 1 : 0)'; then
  node bin/falcon.js image build tiny --force
fi

step "build (dist/, which the package test and the falcon-node image carry)"
npm run build --silent

step "Kubernetes test cluster (test/k8s)"
# Builds kube-apiserver, kubelet, the scheduler and the controller-manager from Debian's
# `kubernetes` source package when they are not cached (~9 min on 2 cores, once; kept in
# $FALCON_IMAGE_DIR/cache/k8s), then brings the two-host cluster up and down once, so a broken
# cluster fails here and not halfway through the e2e tests (which start their own).
# FALCON_TEST_K8S=0 skips this and the cluster's e2e tests.
if [ "${FALCON_TEST_K8S:-1}" != 0 ]; then
  npx tsx test/k8s/cluster.ts build
  npx tsx test/k8s/cluster.ts up --name falcon-k8s-smoke --replace
  npx tsx test/k8s/cluster.ts down --name falcon-k8s-smoke
fi

step "end-to-end tests"
# The recipe test builds tiny again, and debian-12 with bird2 (into the store, removed afterwards),
# from the store's download cache, not from a second download: after the first run its Debian
# packages are all cached there (cache/debs, cache/mmdebstrap-debs).
export FALCON_TEST_CACHE_DIR="${FALCON_IMAGE_DIR:-/var/lib/falcon/images}/cache"
npx vitest run --project e2e
step "done"
