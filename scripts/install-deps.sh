#!/usr/bin/env bash
# Installs the Debian 12 packages tandem needs to build, test and run its demo. Idempotent: only
# what is missing is installed, and apt's lists are refreshed only when something is.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates python3
  libboost1.81-dev libcurl4-openssl-dev nlohmann-json3-dev libc-ares-dev prometheus-cpp-dev
  libyaml-cpp-dev libcli11-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev libnghttp2-dev
  nginx haproxy wrk nghttp2-client keepalived python3-yaml openssl clang-format
)

# kubectl kustomize (a GitOps test pipes an overlay into tandem); any kubectl will do
if ! command -v kubectl >/dev/null 2>&1; then
  packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx, haproxy and keepalived start system services; the tests run their own instances (and
# only check keepalived configurations, never start VRRP).
for svc in nginx haproxy keepalived; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
echo "install-deps: done"
