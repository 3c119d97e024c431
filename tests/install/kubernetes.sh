#!/usr/bin/env bash
# The Kubernetes manifests (deploy/kubernetes), offline: they render with
# `kubectl kustomize`, every object validates against the Kubernetes schemas
# (kubernetes-validate), the objects fit together, and each of the three
# pods' switchyard.toml, rendered by the init container's own script in a
# chroot as the pod would, passes `switchyard check` and seeds the other two
# pods. Details: tests/install/kubernetes.py.
#
#   tests/install/kubernetes.sh                    # target/debug/switchyard (built if missing)
#   SWITCHYARD_BIN=target/release/switchyard tests/install/kubernetes.sh
#
# Installs what it needs when missing: kubectl (Debian's kubernetes-client),
# a static busybox (busybox-static: the init container's shell, in the
# chroot), kubernetes-validate (PyPI; brings PyYAML). Needs root (chroot).
# Nothing runs in the background; the work directory is removed on exit
# (a trap, also on failure).
set -euo pipefail
cd "$(dirname "$0")/../.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
scripts/apt-install.sh kubernetes ${need[@]+"${need[@]}"}
if ! python3 -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  echo "installing kubernetes-validate (PyPI, used by this test)" >&2
  # (Debian's own python3 refuses pip without --break-system-packages.)
  python3 -m pip install --quiet kubernetes-validate 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages kubernetes-validate
fi

bin=${SWITCHYARD_BIN:-target/debug/switchyard}
if [ -z "${SWITCHYARD_BIN:-}" ] && [ ! -x "$bin" ]; then
  cargo build --locked --quiet --bin switchyard
fi
echo "kubernetes: $(kubectl version --client 2>/dev/null | head -1), $("$bin" --version)"
work=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-k8s.XXXXXX")
trap 'rm -rf "$work"' EXIT
$sudo python3 tests/install/kubernetes.py --bin "$bin" --work "$work"
