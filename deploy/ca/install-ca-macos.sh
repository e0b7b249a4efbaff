#!/bin/sh
# Trust the Greenroom interception CA on macOS (System keychain, every user).
#
#   sudo sh install-ca-macos.sh /path/to/greenroom-ca.pem
#   sudo sh install-ca-macos.sh --remove /path/to/greenroom-ca.pem
#
# At scale, push a configuration profile from your MDM instead (Jamf, Kandji, Intune: a
# "Certificate" payload, com.apple.security.root); users cannot remove a profile-installed root.
# Safari, Chrome, Edge and the system frameworks use the keychain; Firefox needs its own policy
# (see README.md) and CLI tools need the environment from greenroom-env.sh.
set -eu

die() { echo "install-ca-macos: $*" >&2; exit 1; }
[ "$(uname -s)" = Darwin ] || die "this script is for macOS"

if [ "${1:-}" = "--remove" ]; then
    [ -r "${2:-}" ] || die "usage: install-ca-macos.sh --remove CERT.pem"
    security remove-trusted-cert -d "$2"
    security delete-certificate -Z "$(openssl x509 -in "$2" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d :)" \
        /Library/Keychains/System.keychain
    echo "install-ca-macos: removed"
    exit 0
fi

CERT="${1:-}"
[ -r "$CERT" ] || die "usage: install-ca-macos.sh CERT.pem"
grep -q -- "PRIVATE KEY" "$CERT" && die "$CERT holds a private key: install the certificate only"
security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "$CERT"
security verify-cert -c "$CERT" >/dev/null && echo "install-ca-macos: trusted $(openssl x509 -in "$CERT" -noout -subject)"
