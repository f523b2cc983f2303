"""A run's file in the database, in chunks: stored from a file and served a chunk at a time, checked
against its SHA-256 on the way out.

Neither storing nor serving holds more than one chunk (``CHUNK_BYTES``) of a file in memory, whatever
the run's size. The digest is the file's own (a download's ETag); it is computed from the bytes as they
are stored, and every read recomputes it, so a file changed in the database behind the application's
back (or damaged) is refused by name, not handed to a printer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO

from sqlalchemy import insert, select
from sqlmodel import Session, col

from trace.errors import Corrupt
from trace.printing.models import CHUNK_BYTES, PrintArtefact, PrintArtefactChunk


def store(*, session: Session, run_id: int, content: IO[bytes]) -> tuple[int, str]:
    """Write ``content`` (read to its end) as run ``run_id``'s chunks; its size and SHA-256.

    The artefact's row must exist (the chunks refer to it); the caller records the figures on it.
    """
    digest, size, seq = hashlib.sha256(), 0, 0
    table = PrintArtefactChunk.__table__  # type: ignore[attr-defined]
    # Core inserts: an ORM object per chunk would stay in the session (and its bytes in memory) until the end.
    while data := content.read(CHUNK_BYTES):
        digest.update(data)
        size += len(data)
        session.execute(insert(table).values(print_run_id=run_id, seq=seq, data=data))
        seq += 1
    return size, digest.hexdigest()


def _corrupt(artefact: PrintArtefact, size: int, sha256: str) -> Corrupt:
    return Corrupt(
        f"The file of print run {artefact.print_run_id} does not match its checksum: it was changed or "
        "damaged in the database since it was rendered; print the run again",
        code="artefact_corrupt",
        run_id=artefact.print_run_id,
        expected_sha256=artefact.sha256,
        found_sha256=sha256,
        expected_size=artefact.size,
        found_size=size,
    )


def chunks(*, session: Session, artefact: PrintArtefact) -> Iterator[bytes]:
    """The file's bytes, a chunk at a time, in order; raises ``Corrupt`` after the last chunk if they are
    not the bytes that were stored (a download already under way is then cut short, never completed)."""
    digest, size, seq = hashlib.sha256(), 0, 0
    query = select(col(PrintArtefactChunk.data)).where(col(PrintArtefactChunk.print_run_id) == artefact.print_run_id)
    # One chunk per query, by key: a cursor over all of them would buffer the whole file in some drivers.
    while (data := session.execute(query.where(col(PrintArtefactChunk.seq) == seq)).scalar()) is not None:
        digest.update(data)
        size += len(data)
        seq += 1
        if size > artefact.size:
            break  # longer than it should be: no need to read on
        yield data
    found = digest.hexdigest()
    if size != artefact.size or found != artefact.sha256:
        raise _corrupt(artefact, size, found)


def check(*, session: Session, artefact: PrintArtefact) -> None:
    """Read the whole file once and raise ``Corrupt`` unless it is the file that was stored (a download
    checks first, so a changed file is refused before its first byte is sent)."""
    for _ in chunks(session=session, artefact=artefact):
        pass


def read(*, session: Session, artefact: PrintArtefact) -> bytes:
    """The whole file in memory, checked (for small files and tests; downloads stream ``chunks``)."""
    return b"".join(chunks(session=session, artefact=artefact))
