"""Test support: a throwaway PKI, a fake AI provider over TLS, and a gateway subprocess helper."""
