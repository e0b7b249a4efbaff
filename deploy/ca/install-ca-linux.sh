#!/bin/sh
# Install the Greenroom interception CA certificate into a Linux system trust store.
#
#   sudo sh install-ca-linux.sh /path/to/greenroom-ca.pem          # install
#   sudo sh install-ca-linux.sh --remove                            # uninstall
#
# Debian/Ubuntu (update-ca-certificates) and RHEL/Fedora/SUSE/Arch (update-ca-trust) are detected by
# which tool is on PATH. GREENROOM_ROOT prefixes every path (an image build, or the tests' temp root).
# Only the certificate is installed, never the key: the file must hold exactly one certificate.
set -eu

ROOT="${GREENROOM_ROOT:-}"
NAME="greenroom-ca"

die() { echo "install-ca-linux: $*" >&2; exit 1; }

if command -v update-ca-certificates >/dev/null 2>&1; then
    FLAVOUR=debian
    TARGET="$ROOT/usr/local/share/ca-certificates/$NAME.crt"   # the tool only picks up *.crt here
elif command -v update-ca-trust >/dev/null 2>&1; then
    FLAVOUR=redhat
    TARGET="$ROOT/etc/pki/ca-trust/source/anchors/$NAME.pem"
else
    die "neither update-ca-certificates nor update-ca-trust is installed (apt-get install ca-certificates)"
fi

refresh() {
    if [ "$FLAVOUR" = debian ]; then
        update-ca-certificates ${1:+"$1"}
    else
        update-ca-trust extract
    fi
}

if [ "${1:-}" = "--remove" ]; then
    rm -f "$TARGET"
    refresh --fresh
    echo "install-ca-linux: removed $TARGET"
    exit 0
fi

CERT="${1:-}"
[ -n "$CERT" ] || die "usage: install-ca-linux.sh CERT.pem | --remove"
[ -r "$CERT" ] || die "$CERT: cannot read it"
grep -q -- "PRIVATE KEY" "$CERT" && die "$CERT holds a private key: install the certificate only (greenroom ca path)"
COUNT=$(grep -c -- "-----BEGIN CERTIFICATE-----" "$CERT" || true)
[ "$COUNT" = 1 ] || die "$CERT: expected exactly one PEM certificate, found $COUNT"

mkdir -p "$(dirname "$TARGET")"
cp "$CERT" "$TARGET"
chmod 0644 "$TARGET"
refresh
if command -v openssl >/dev/null 2>&1; then
    echo "install-ca-linux: installed $TARGET ($(openssl x509 -in "$TARGET" -noout -fingerprint -sha256))"
else
    echo "install-ca-linux: installed $TARGET"
fi
