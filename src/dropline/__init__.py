"""Dropline: a self-hostable commerce engine for creator brands."""
__version__ = "0.1.0"
