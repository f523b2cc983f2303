"""Scans of the public page: one row per view of a label's page, with no personal data kept.

``models`` (the table), ``record`` (building a scan from a request's hints, writing scans in bulk,
counting them and judging the pattern), ``buffer`` (holding scans in memory or Redis and writing
them in the background so a page view never waits for the database).
"""
