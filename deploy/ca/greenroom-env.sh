# Environment for CLI tools and SDKs behind Greenroom. Source it (bash, zsh, sh):
#
#   GREENROOM_PROXY=http://USER:PASSWORD@greenroom.studio.internal:8080 \
#   GREENROOM_CA=/etc/greenroom/greenroom-ca.pem  . deploy/ca/greenroom-env.sh
#
# Why a combined bundle: SSL_CERT_FILE (OpenSSL, Python's ssl, httpx, the openai/anthropic SDKs),
# REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and GIT_SSL_CAINFO REPLACE the trust store: pointing them at the
# Greenroom CA alone breaks every other HTTPS site. This script writes
# $GREENROOM_BUNDLE = the system roots + the Greenroom CA, and points them there. NODE_EXTRA_CA_CERTS
# ADDS to Node's built-in roots, so it gets the Greenroom CA alone.
#
# GREENROOM_SYSTEM_BUNDLE overrides where the system roots are read from (autodetected).
# GREENROOM_NO_PROXY is added to NO_PROXY (default: localhost,127.0.0.1,::1).

_gr_fail() { echo "greenroom-env: $*" >&2; return 1; }

_gr_setup() {
    [ -n "${GREENROOM_CA:-}" ] || { _gr_fail "set GREENROOM_CA to the gateway's CA certificate (greenroom ca path)"; return 1; }
    [ -r "$GREENROOM_CA" ] || { _gr_fail "$GREENROOM_CA: cannot read it"; return 1; }
    if grep -q -- "PRIVATE KEY" "$GREENROOM_CA"; then _gr_fail "$GREENROOM_CA holds a private key"; return 1; fi

    _gr_system="${GREENROOM_SYSTEM_BUNDLE:-}"
    if [ -z "$_gr_system" ]; then
        for _gr_candidate in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt \
                             /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem; do
            if [ -r "$_gr_candidate" ]; then _gr_system="$_gr_candidate"; break; fi
        done
    fi
    [ -n "$_gr_system" ] || { _gr_fail "no system CA bundle found; set GREENROOM_SYSTEM_BUNDLE"; return 1; }

    GREENROOM_BUNDLE="${GREENROOM_BUNDLE:-${XDG_CONFIG_HOME:-$HOME/.config}/greenroom/ca-bundle.pem}"
    mkdir -p "$(dirname "$GREENROOM_BUNDLE")"
    _gr_tmp="$GREENROOM_BUNDLE.tmp.$$"
    # The system bundle may already hold the Greenroom CA (install-ca-linux.sh): a duplicate is harmless.
    { cat "$_gr_system"; echo; cat "$GREENROOM_CA"; } > "$_gr_tmp" && mv "$_gr_tmp" "$GREENROOM_BUNDLE"
    export GREENROOM_BUNDLE

    # Trust: the combined bundle for tools whose variable replaces the store.
    export SSL_CERT_FILE="$GREENROOM_BUNDLE"         # OpenSSL, Python ssl/httpx/openai/anthropic, Ruby, PHP
    export REQUESTS_CA_BUNDLE="$GREENROOM_BUNDLE"    # Python requests (ignores SSL_CERT_FILE)
    export CURL_CA_BUNDLE="$GREENROOM_BUNDLE"        # curl and requests
    export GIT_SSL_CAINFO="$GREENROOM_BUNDLE"        # git over https
    export AWS_CA_BUNDLE="$GREENROOM_BUNDLE"         # boto3 / AWS CLI (Bedrock)
    export PIP_CERT="$GREENROOM_BUNDLE"              # pip (only if pip itself goes through the gateway)
    export GRPC_DEFAULT_SSL_ROOTS_FILE_PATH="$GREENROOM_BUNDLE"   # gRPC clients
    export NODE_EXTRA_CA_CERTS="$GREENROOM_CA"       # Node.js: added to its built-in roots
    export DENO_CERT="$GREENROOM_CA"                 # Deno: added as well

    # Routing: only if a proxy is given (with a PAC file, browsers need none of this).
    if [ -n "${GREENROOM_PROXY:-}" ]; then
        export HTTPS_PROXY="$GREENROOM_PROXY" https_proxy="$GREENROOM_PROXY"
        export HTTP_PROXY="$GREENROOM_PROXY" http_proxy="$GREENROOM_PROXY"
        export NO_PROXY="localhost,127.0.0.1,::1${GREENROOM_NO_PROXY:+,$GREENROOM_NO_PROXY}"
        export no_proxy="$NO_PROXY"
    fi
    return 0
}

_gr_setup
