"""hytrace domain: organisations, products, lots, events, lineage and their rules.

This package deliberately shadows the standard library's ``trace`` module; everything
runs from the repository root (``python -m ...``) so this one is found first.
"""

HYTRACE_DOMAIN = True
