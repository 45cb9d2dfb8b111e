#!/usr/bin/env bash
# Runs every check: formatting, clippy and rustdoc with -D warnings, all tests and doctests.
# Installs what the tests need itself (a fresh machine has only the Rust toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "test dependencies (prometheus, promtool, pushgateway, alertmanager)"
bash scripts/install-test-deps.sh

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --version && cargo clippy --version

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings (workspace, all features)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo clippy -D warnings (core, default features only)"
cargo clippy -p stockbot-telemetry --lib --locked -- -D warnings

step "cargo clippy -D warnings (core, no default features: no TLS stack)"
cargo clippy -p stockbot-telemetry --lib --no-default-features --locked -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked

step "cargo deny check bans licenses sources (deny.toml)"
target/tools/cargo-deny-0.20.2/bin/cargo-deny --locked check bans licenses sources

step "cargo test (unit, integration, doc tests)"
cargo test --workspace --all-features --locked
