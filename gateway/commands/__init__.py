"""Subcommands of `greenroom`; each module exposes `register(subparsers)`."""
