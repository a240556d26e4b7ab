#!/usr/bin/env bash
# Installs etcd and builds kube-apiserver, kube-controller-manager and kubectl 1.20.2 from Debian's source
# package, caching the binaries in "$1" (default: ~/.cache/rollouts/k8s-1.20.2). Needs root for
# apt-get. Idempotent: returns at once when the binaries are cached.
set -euo pipefail
dest=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/rollouts/k8s-1.20.2-2}
if [ -x "$dest/kube-apiserver" ] && [ -x "$dest/kube-controller-manager" ] && [ -x "$dest/kubectl" ] && command -v etcd >/dev/null; then
  echo "control plane binaries cached in $dest"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  cat >&2 <<MSG
The local control plane needs etcd, kube-apiserver and kube-controller-manager (1.20+).
Either put them on PATH (or in \$KUBEBUILDER_ASSETS), or run this as root on Debian to build them:
  apt-get install etcd-server dpkg-dev golang-go rsync jq
  apt-get source kubernetes   # needs a deb-src entry for bookworm main
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" (GOPATH layout, CGO_ENABLED=0)
MSG
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs '^deb-src .* bookworm main' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
   && ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ 2>/dev/null; then
  mirror=$(grep -rhoE '^URIs: +[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk "{print \$2}" || true)
  keyring=$(grep -rhoE '^Signed-By: +[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk "{print \$2}" || true)
  if [ -z "$mirror" ]; then
    mirror=$(grep -rhoE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1 | awk "{print \$NF}" || true)
  fi
  if [ -z "$mirror" ]; then echo "no Debian mirror found in /etc/apt sources: add a deb-src entry for bookworm main" >&2; exit 2; fi
  {
    echo "Types: deb-src"; echo "URIs: $mirror"; echo "Suites: bookworm"; echo "Components: main"
    if [ -n "$keyring" ]; then echo "Signed-By: $keyring"; fi
  } > /etc/apt/sources.list.d/rollouts-src.sources
fi
apt-get update -qq
apt-get install -y -qq etcd-server dpkg-dev golang-go rsync jq golang-github-modern-go-reflect2-dev >/dev/null
if [ -x "$dest/kube-apiserver" ] && [ -x "$dest/kube-controller-manager" ] && [ -x "$dest/kubectl" ]; then exit 0; fi
work=$(mktemp -d /var/tmp/rollouts-k8s-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -qq kubernetes >/dev/null 2>&1 || apt-get source kubernetes
tree=$(find "$work" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
mkdir -p "$work/.go/src/k8s.io"
ln -s "$tree" "$work/.go/src/k8s.io/kubernetes"
cd "$work/.go/src/k8s.io/kubernetes"
# Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, whose unsafe map iteration corrupts memory
# under Go >= 1.18 (the API server dies with SIGSEGV in json-iterator). Debian ships 1.0.2,
# which fixes it; build against that.
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
echo "building kube-apiserver, kube-controller-manager and kubectl (about 7 minutes on 2 cores)"
GOPATH="$work/.go" GOFLAGS=-mod=vendor GO111MODULE=off CGO_ENABLED=0 GOCACHE="$work/.gocache" \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl" >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2; exit 1; }
mkdir -p "$dest"
for b in kube-apiserver kube-controller-manager kubectl; do
  src=$(find "$work/.go/src/k8s.io/kubernetes/_output" -type f -name "$b" -perm -u+x | head -n1)
  install -m 0755 "$src" "$dest/$b"
done
echo "control plane binaries cached in $dest"
