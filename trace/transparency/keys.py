"""The log's signing key from settings (or, outside production, a key made once and kept on disk)."""

from __future__ import annotations

import os
from pathlib import Path

from trace.errors import RuleViolation
from trace.platform.config import Settings
from trace.tlog import note


def _key_name(origin: str) -> str:
    # A note key's name has no '+' and no spaces; C2SP names a log's key after its origin.
    return "".join(c for c in origin if c != "+" and not c.isspace()) or "hytrace"


def signer(settings: Settings) -> note.Signer:
    """The key checkpoints are signed with."""
    if settings.tlog_signing_key:
        try:
            return note.Signer(settings.tlog_signing_key)
        except note.NoteError as error:
            raise RuleViolation(f"HYTRACE_TLOG_SIGNING_KEY is not a signer key: {error}", code="log_key_bad") from None
    if settings.environment == "production":
        raise RuleViolation("HYTRACE_TLOG_SIGNING_KEY is not set", code="log_key_missing")
    path = Path(settings.tlog_key_file)
    if path.exists():
        try:
            return note.Signer(path.read_text())
        except note.NoteError as error:
            raise RuleViolation(f"{path} does not hold a signer key: {error}", code="log_key_bad") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    skey, _ = note.generate_key(_key_name(settings.log_origin))
    # Made once, readable by its owner only; a second process racing here keeps the first key written.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return note.Signer(path.read_text())
    with os.fdopen(fd, "w") as out:
        out.write(skey + "\n")
    return note.Signer(skey)


def previous_signer(settings: Settings) -> note.Signer | None:
    """The outgoing key while a rotation lasts (it co-signs and announces the new one), else None."""
    if not settings.tlog_previous_signing_key:
        return None
    try:
        return note.Signer(settings.tlog_previous_signing_key)
    except note.NoteError as error:
        raise RuleViolation(
            f"HYTRACE_TLOG_PREVIOUS_SIGNING_KEY is not a signer key: {error}", code="log_key_bad"
        ) from None


def verifiers(settings: Settings) -> list[note.Verifier]:
    """The current key's verifier and the earlier ones checkpoints may have been signed with."""
    keys = [signer(settings).verifier_key]
    outgoing = previous_signer(settings)
    if outgoing is not None:
        keys.append(outgoing.verifier_key)
    keys.extend(k.strip() for k in settings.tlog_previous_keys.split(",") if k.strip())
    return [note.Verifier(k) for k in dict.fromkeys(keys)]


def witnesses(settings: Settings) -> list[note.Verifier]:
    """The witnesses whose cosignatures are accepted."""
    out = []
    for key in (k.strip() for k in settings.tlog_witness_keys.split(",") if k.strip()):
        verifier = note.Verifier(key)
        if verifier.alg != note.COSIGNATURE_V1:
            raise RuleViolation(f"{verifier.name} is not a witness key (cosignature/v1)", code="log_key_bad")
        out.append(verifier)
    return out
