#!/usr/bin/env bash
# Installs everything Estiba needs to build and test on a fresh Debian 12 machine (as root).
# Idempotent: packages already present are skipped by apt; safe to run on every CI start.
set -euo pipefail

apt_packages=(
  busybox-static   # the test and sample images are made from its /bin/busybox
  libseccomp-dev   # seccomp for estiba-runtime (libcontainer)
  runc             # the second OCI runtime backend, and the shim tests' runtime
  tini             # --init: /usr/bin/tini-static is bind-mounted as /sbin/docker-init
  pkg-config gcc make
  iproute2 util-linux procps psmisc curl
  nftables         # estiba-net: NAT, published ports and isolation (the nft binary)
  python3 python3-pip
  hyperfine        # bench/
  docker-registry  # registry e2e tests: a real distribution registry on 127.0.0.1
  apache2-utils    # htpasswd -B for the registry auth tests
  openssl          # a test CA and server certificate for the TLS registry test
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install a Rust toolchain (rustup) first" >&2
  exit 1
fi

# The real docker CLI (client only) drives the end-to-end tests; Debian's docker.io ships one too.
if ! command -v docker >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker-cli 2>/dev/null || apt-get install -y -qq docker.io
fi

# docker-py drives the SDK tests.
if ! python3 -c 'import docker' >/dev/null 2>&1; then
  python3 -m pip install -q 'docker==7.1.0' 2>/dev/null \
    || python3 -m pip install -q --break-system-packages 'docker==7.1.0'
fi
