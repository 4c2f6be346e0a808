"""Synthetic schools and loopback servers in each vendor's style, with fault injection."""
