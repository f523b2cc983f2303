"""The export to the national traceability portal (Circular 02/2024/TT-BKHCN): the mapping
(``mapping.py``, the one file to adapt), incremental feeds, the ZIP file and read-only keys."""

from trace.portal.export import export_zip, filename
from trace.portal.feed import FEEDS, Page, page, require_portal_reader
from trace.portal.keys import PortalKeyCreate, issue_portal_key

__all__ = [
    "FEEDS",
    "Page",
    "PortalKeyCreate",
    "export_zip",
    "filename",
    "issue_portal_key",
    "page",
    "require_portal_reader",
]
