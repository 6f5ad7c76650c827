#!/usr/bin/env bash
# Installs the Debian packages the tests use, when they are missing: Chromium for the
# browser tests, the OpenSSH client for the sshd tests, lintian, debootstrap and systemd-analyze
# for the package's tests (deploy/), Xvfb for the headful terminal benchmark (a hidden parent
# window), iproute2 (ip, tc) for its lossy path and for the NAT test's network namespaces, nftables (nft) for that test's NATs, certutil (libnss3-tools) for the browser to
# trust the test ACME server's root, PostgreSQL (initdb, pg_ctl) for the PostgreSQL store's tests,
# util-linux's unshare for the e2e agents' own /etc/hosts (mount namespaces), tmux for the console's reconnect test, and TigerVNC's X server with xsetroot for the VNC test. Needs root (or sudo) to install.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v scp >/dev/null 2>&1 || need+=(openssh-client)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables) # e2e/nat_test.go: the NATs it builds in network namespaces
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need+=(postgresql) # pgstore's tests (internal/testpg)
command -v unshare >/dev/null 2>&1 || need+=(util-linux) # e2e: agents in mount namespaces of their own with an /etc/hosts bind-mounted (ACME, replicas behind one name)
command -v tmux >/dev/null 2>&1 || need+=(tmux) # the console's reconnect test attaches to tmux
command -v Xtigervnc >/dev/null 2>&1 || need+=(tigervnc-standalone-server) # the VNC test: a real X display that is a VNC server
command -v xsetroot >/dev/null 2>&1 || need+=(x11-xserver-utils) # ... with a known colour drawn on it
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
