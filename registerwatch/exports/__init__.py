"""Statutory returns: one package per return, each validated against its own XSD."""
