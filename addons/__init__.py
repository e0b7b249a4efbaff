"""mitmproxy addons: thin glue from proxy hooks to the pure core in `gateway/`."""
