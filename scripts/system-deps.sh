#!/bin/sh
# System packages the test suite drives for real: Debian's chromium (review UI browser tests),
# nftables (`nft -c` checks the firewall snippets), systemd (`systemd-analyze verify` checks the units)
# and kubectl (`kubectl kustomize` renders the manifests offline). Installed when missing and we are
# root; otherwise say what to install and stop.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$missing nftables"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
if ! command -v kubectl >/dev/null 2>&1; then
    # Not in Debian's archive: the machine image ships it; elsewhere install it from Kubernetes' packages.
    echo "greenroom: the test suite needs kubectl (kubectl kustomize renders deploy/kubernetes offline)" >&2
    exit 1
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "greenroom: installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    exit 0
fi
echo "greenroom: the test suite needs these system packages:$missing" >&2
echo "  install them (e.g. sudo apt-get install$missing) and run make test again" >&2
exit 1
