#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian package meshtrace needs to build, test and benchmark.
#   deps.sh                     install (apt-get) unconditionally
#   deps.sh --check-or-install  install only when something is missing
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libcurl4-openssl-dev protobuf-c-compiler libprotobuf-c-dev libdeflate-dev libnghttp2-dev
	xxd # embeds dashboards/web/ in the binary
	libclang-rt-dev # libFuzzer and the sanitizers' runtimes for clang (make fuzz; only recommended by clang)
	# test
	libcmocka-dev protobuf-compiler python3 python3-protobuf python3-pytest python3-yaml
	strace # test_bad_config.py: a bad configuration makes no bpf(), bind() or file
	nginx-light curl redis-server iproute2 procps prometheus nftables iptables
	nghttp2-server nghttp2-client python3-grpcio python3-grpc-tools openssl
	libssl-dev # test_tls.py links a client with OpenSSL's static libraries (SSL_* in its .symtab)
	golang-go # test_tls_go.py builds a Go HTTPS server and client (crypto/tls probes)
	redis-tools postgresql postgresql-client mariadb-server mariadb-client libmariadb-dev memcached
	chromium # the page's test (Node.js and npm: below)
	# the image and its test (make image, tests/integration/test_deploy.py); runc, not crun:
	# crun refuses hybrid cgroup hosts
	podman buildah runc
	# Kubernetes names from the CRI (tests/integration/test_k8s_names.py): a real containerd with
	# its CRI plugin and the CNI plugins; libc6-dev for the static pause binary built there
	containerd containernetworking-plugins libc6-dev
	# bench
	wrk linux-perf
)
# Node.js and npm: the page's test (playwright-core) and the OpenTelemetry JS SDK service
# (tests/integration/test_sdk.py, Node >= 18.19). Debian's, unless a node from another package
# (nodesource's bundles npm, and Debian's npm conflicts with it) is already there.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
# kubectl renders deploy/kubernetes (kubectl kustomize): Debian's kubernetes-client, unless a
# kubectl from another package is already there (both ship /usr/bin/kubectl).
command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client)

missing() {
	local p
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			echo "$p"
	done
}

if [ "${1:-}" = "--check-or-install" ]; then
	need=$(missing)
	[ -z "$need" ] && exit 0
	echo "deps: installing missing packages: $(echo $need | tr '\n' ' ')"
else
	need="${PKGS[*]}"
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages ($need); run 'sudo make deps' to install them" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
# The packaged nginx and redis start themselves as services: the tests start their own.
systemctl disable --now nginx redis-server prometheus prometheus-node-exporter \
	postgresql mariadb memcached >/dev/null 2>&1 || true
