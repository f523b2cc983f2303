"""The portal export as one ZIP of CSV files and a manifest, produced as a stream of bytes."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from trace import csvfile
from trace.access import Actor
from trace.errors import RuleViolation
from trace.platform.timeutil import to_utc, utcnow
from trace.portal import mapping
from trace.portal.feed import FEEDS, every_row, require_portal_reader, settled_until

BOM = "\ufeff"  # so Excel opens the UTF-8 files with their Vietnamese intact
MANIFEST = "manifest.json"
FORMAT_VERSION = "hytrace-portal-1"


class _Sink(io.RawIOBase):
    """A write-only, non-seekable file whose bytes are taken out as they arrive (zipfile then writes
    data descriptors instead of seeking back, so nothing is kept beyond the chunk in flight)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def _csv_line(values: Sequence[str]) -> bytes:
    # A cell starting like a formula gets a leading apostrophe there: it never runs in a spreadsheet.
    return csvfile.line(values).encode("utf-8")


def export_zip(
    *,
    session: Session,
    actor: Actor,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    batch: int = 1000,
) -> Iterator[bytes]:
    """The export (rows changed in [since, until]) as ZIP bytes, chunk by chunk.

    Access and the period are checked at the call, before any byte is produced."""
    require_portal_reader(actor)
    generated = now or utcnow()
    start = to_utc(since)[0] if since is not None else None
    if start is not None and until is not None and start > to_utc(until)[0]:
        raise RuleViolation("since is after until", code="bad_period")
    end = settled_until(until, now=generated)  # a start inside the settle window gives empty files
    return _stream(session=session, since=start, until=end, generated=generated, batch=batch)


def _stream(
    *, session: Session, since: datetime | None, until: datetime, generated: datetime, batch: int
) -> Iterator[bytes]:
    sink = _Sink()
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for feed in FEEDS:
            name, columns = mapping.FILES[feed]
            digest, rows = hashlib.sha256(), 0
            with archive.open(name, "w", force_zip64=True) as member:
                header = BOM.encode("utf-8") + _csv_line([c.name for c in columns])
                digest.update(header)
                member.write(header)
                for row in every_row(session=session, feed=feed, since=since, until=until, batch=batch):
                    record = mapping.render(columns, row)
                    line = _csv_line([record[c.name] for c in columns])
                    digest.update(line)
                    member.write(line)
                    rows += 1
                    if rows % batch == 0:
                        yield sink.take()
            files.append({"name": name, "feed": feed, "rows": rows, "sha256": digest.hexdigest()})
            yield sink.take()
        manifest = {
            "format": FORMAT_VERSION,
            "generated_at": generated.isoformat(),
            "period": {
                "since": since.isoformat() if since else None,
                "until": until.isoformat(),
                "by": "record time (UTC)",
            },
            "files": files,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
    yield sink.take()


def filename(generated: datetime) -> str:
    """The download's file name."""
    return f"hytrace-portal-{generated.strftime('%Y%m%dT%H%M%SZ')}.zip"
