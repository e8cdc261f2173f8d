#!/usr/bin/env bash
# Installs what the tests need and runs them. Tests that read ../shared/reference (the
# authors' checkpoints and Set5) skip with a message when it is absent, and fail under CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export RUST_BACKTRACE=1
cargo build --all-targets
if command -v cargo-nextest >/dev/null; then
    cargo nextest run --no-fail-fast
else
    cargo test --no-fail-fast
fi
