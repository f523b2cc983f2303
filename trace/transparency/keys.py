"""The log's signing key from settings (or, outside production, a key made once and kept on disk)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from trace.errors import RuleViolation
from trace.platform.config import Settings
from trace.tlog import note


def _key_name(origin: str) -> str:
    # A note key's name has no '+' and no spaces; C2SP names a log's key after its origin.
    return "".join(c for c in origin if c != "+" and not c.isspace()) or "hytrace"


@lru_cache(maxsize=32)
def _signer(skey: str, setting: str) -> note.Signer:
    # Parsed once per key: a key derivation per page build or per round would be work done again and again.
    try:
        return note.Signer(skey)
    except note.NoteError as error:
        raise RuleViolation(f"{setting} is not a signer key: {error}", code="log_key_bad") from None


@lru_cache(maxsize=64)
def _verifier(vkey: str, setting: str) -> note.Verifier:
    try:
        return note.Verifier(vkey)
    except note.NoteError as error:
        raise RuleViolation(f"{setting} holds a key that is not a verifier key: {error}", code="log_key_bad") from None


def _listed(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def signer(settings: Settings) -> note.Signer:
    """The key checkpoints are signed with."""
    if settings.tlog_signing_key:
        return _signer(settings.tlog_signing_key.strip(), "HYTRACE_TLOG_SIGNING_KEY")
    if settings.environment == "production":
        raise RuleViolation("HYTRACE_TLOG_SIGNING_KEY is not set", code="log_key_missing")
    path = Path(settings.tlog_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        skey, _ = note.generate_key(_key_name(settings.log_origin))
        # Made once, readable by its owner only; a second process racing here keeps the first key written.
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(skey + "\n")
        except FileExistsError:
            pass
    return _signer(path.read_text().strip(), str(path))


def previous_signer(settings: Settings) -> note.Signer | None:
    """The outgoing key while a rotation lasts (it co-signs and announces the new one), else None."""
    if not settings.tlog_previous_signing_key:
        return None
    return _signer(settings.tlog_previous_signing_key.strip(), "HYTRACE_TLOG_PREVIOUS_SIGNING_KEY")


@dataclass(frozen=True)
class Signing:
    """What a sequencer round signs with: the key, the origin line, and during a rotation the outgoing key."""

    signer: note.Signer
    origin: str
    previous: note.Signer | None = None


def signing(settings: Settings) -> Signing:
    """The log's signing keys and origin, from settings."""
    return Signing(signer(settings), settings.log_origin, previous_signer(settings))


def verifiers(settings: Settings) -> list[note.Verifier]:
    """The current key's verifier and the earlier ones checkpoints may have been signed with."""
    keys = [signer(settings).verifier_key]
    outgoing = previous_signer(settings)
    if outgoing is not None:
        keys.append(outgoing.verifier_key)
    keys.extend(_listed(settings.tlog_previous_keys))
    return [_verifier(k, "HYTRACE_TLOG_PREVIOUS_KEYS") for k in dict.fromkeys(keys)]


def witnesses(settings: Settings) -> list[note.Verifier]:
    """The witnesses whose cosignatures are accepted."""
    out = []
    for key in _listed(settings.tlog_witness_keys):
        verifier = _verifier(key, "HYTRACE_TLOG_WITNESS_KEYS")
        if verifier.alg != note.COSIGNATURE_V1:
            raise RuleViolation(f"{verifier.name} is not a witness key (cosignature/v1)", code="log_key_bad")
        out.append(verifier)
    return out


def check(settings: Settings) -> None:
    """Read every key the log is configured with, so that a wrong one stops the start, not a request."""
    signing(settings)
    verifiers(settings)
    witnesses(settings)
