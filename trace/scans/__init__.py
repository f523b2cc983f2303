"""Scans of the public page: one row per view of a label's page, with no personal data kept.

``models`` (the tables), ``record`` (building a scan from a request's hints, writing scans in bulk,
reading their figures and judging the pattern), ``tallies`` (the figures kept as scans are written:
per code, its first sightings, per quarter hour), ``check`` (those figures recomputed from the scans,
for verify-log), ``buffer`` (holding scans in memory or Redis and writing them in the background so a
page view never waits for the database).
"""
