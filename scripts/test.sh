#!/usr/bin/env bash
# README command 2: installs dependencies, then runs every check CI runs: formatting, clippy,
# and the whole test suite (unit, component and end-to-end; end-to-end tests need root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "the test suite needs root (real namespaces, overlay mounts, cgroups)" >&2
  exit 1
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# End-to-end tests start the real binaries, so build them before the tests run.
cargo build --workspace --bins
cargo test --workspace -- --test-threads=2
