"""Vendor adapters: each maps one MIS's records to the common schema (see STYLE.md)."""
