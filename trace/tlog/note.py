"""Signed notes, checkpoints and witness cosignatures: C2SP signed-note, tlog-checkpoint, tlog-cosignature.

Keys are written as Go's ``golang.org/x/mod/sumdb/note`` writes them, so any signed-note tool (Go's note
package, the transparency-dev witness, sigsum) reads our keys and checkpoints:

- signer key ``PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>``; verifier key ``<name>+<hash>+<base64(alg || pub)>``;
- ``hash`` is the first 4 bytes (big-endian, 8 hex digits) of SHA-256(name || "\\n" || alg || pub);
- alg 0x01 is an Ed25519 note signature, 0x04 an Ed25519 witness cosignature (``cosignature/v1``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
SIG_PREFIX = "\u2014 "  # an em dash and a space open every signature line
MAX_SIGNATURES = 100  # as Go's note.Open: a note with more is refused before any is verified
_PRIVATE = "PRIVATE+KEY+"


class NoteError(ValueError):
    """A key, note or checkpoint that is malformed or whose signature does not verify."""


def _b64decode(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        raise NoteError("not standard base64")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise NoteError("not standard base64") from exc


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()


def key_hash(name: str, key: bytes) -> int:
    """The 32-bit key id of a named public key (``key`` starts with its algorithm byte)."""
    return struct.unpack(">I", hashlib.sha256(name.encode() + b"\n" + key).digest()[:4])[0]


def _public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _parse(key: str, *, private: bool) -> tuple[str, int, int, bytes]:
    if private:
        if not key.startswith(_PRIVATE):
            raise NoteError("a signer key starts with PRIVATE+KEY+")
        key = key[len(_PRIVATE) :]
    parts = key.split("+")
    # The base64 key may itself hold '+': the name and the hash are the first two fields.
    if len(parts) < 3:
        raise NoteError("a key is <name>+<hash>+<key>")
    name, hash_hex, material = parts[0], parts[1], "+".join(parts[2:])
    if not _valid_name(name):
        raise NoteError(f"bad key name {name!r}")
    if not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
        raise NoteError("a key hash is 8 lower-case hex digits")
    raw = _b64decode(material)
    if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError("only Ed25519 keys (algorithm 0x01 or 0x04, 32 bytes) are supported")
    return name, int(hash_hex, 16), raw[0], raw[1:]


def generate_key(name: str, *, witness: bool = False) -> tuple[str, str]:
    """A new (signer key, verifier key) pair; ``witness`` makes a cosignature/v1 key."""
    if not _valid_name(name):
        raise NoteError(f"bad key name {name!r}")
    alg = COSIGNATURE_V1 if witness else ED25519
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = bytes([alg]) + _public(private)
    hash_hex = f"{key_hash(name, public):08x}"
    signer = f"{_PRIVATE}{name}+{hash_hex}+{base64.b64encode(bytes([alg]) + seed).decode()}"
    return signer, f"{name}+{hash_hex}+{base64.b64encode(public).decode()}"


class Signer:
    """An Ed25519 signer read from a signer key string."""

    def __init__(self, skey: str) -> None:
        name, hash_, alg, seed = _parse(skey.strip(), private=True)
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = bytes([alg]) + _public(self._key)
        if key_hash(name, public) != hash_:
            raise NoteError("the key hash does not match the key")
        self.name, self.key_hash, self.alg = name, hash_, alg
        self.verifier_key = f"{name}+{hash_:08x}+{base64.b64encode(public).decode()}"

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)


class Verifier:
    """An Ed25519 verifier read from a verifier key string."""

    def __init__(self, vkey: str) -> None:
        name, hash_, alg, public = _parse(vkey.strip(), private=False)
        if key_hash(name, bytes([alg]) + public) != hash_:
            raise NoteError("the key hash does not match the key")
        try:
            self._key = Ed25519PublicKey.from_public_bytes(public)
        except ValueError as exc:
            raise NoteError("not an Ed25519 public key") from exc
        self.name, self.key_hash, self.alg = name, hash_, alg
        self.key = vkey.strip()

    def verify(self, message: bytes, sig: bytes) -> bool:
        """Whether ``sig`` is this key's Ed25519 signature of ``message``."""
        if len(sig) != 64:
            return False
        try:
            self._key.verify(sig, message)
        except InvalidSignature:
            return False
        return True


def _utf8(text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise NoteError("a note is UTF-8 text") from None


def _check_text(text: str) -> None:
    _utf8(text)
    if not text.endswith("\n"):
        raise NoteError("a note's text ends in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note holds no control characters but newlines")


def sign(text: str, *signers: Signer) -> str:
    """The signed note: the text, a blank line, and one signature line per signer."""
    _check_text(text)  # blank lines are allowed: a reader splits at the last one
    lines = []
    for signer in signers:
        if signer.alg != ED25519:
            raise NoteError("a witness key cosigns; it does not sign notes")
        sig = struct.pack(">I", signer.key_hash) + signer.sign(text.encode())
        lines.append(f"{SIG_PREFIX}{signer.name} {base64.b64encode(sig).decode()}\n")
    return text + "\n" + "".join(lines)


@dataclass(frozen=True)
class Signature:
    """One parsed signature line."""

    name: str
    key_hash: int
    raw: bytes  # after the 4-byte key hash
    line: str


def split(msg: str) -> tuple[str, list[Signature]]:
    """The text and the signature lines of a signed note, checked for form only."""
    _utf8(msg)
    if any(ord(c) < 0x20 and c != "\n" for c in msg):
        raise NoteError("a note holds no control characters but newlines")
    cut = msg.rfind("\n\n")
    if cut < 0:
        raise NoteError("a signed note has a blank line before its signatures")
    text, block = msg[: cut + 1], msg[cut + 2 :]
    if not block.endswith("\n"):
        raise NoteError("a signed note ends in a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not _valid_name(name) or not b64:
            raise NoteError("a signature line is '— <name> <base64>'")
        raw = _b64decode(b64)
        if len(raw) < 5:
            raise NoteError("a signature is a key hash and a signature")
        signatures.append(Signature(name, struct.unpack(">I", raw[:4])[0], raw[4:], line + "\n"))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return text, signatures


def open_note(msg: str, verifiers: Sequence[Verifier]) -> tuple[str, list[Verifier]]:
    """The note's text and the known keys that signed it; refuses a note no known key verifies."""
    text, signatures = split(msg)
    known = {(v.name, v.key_hash): v for v in verifiers if v.alg == ED25519}
    good: list[Verifier] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_hash))
        if verifier is None or verifier in good:
            continue
        if not verifier.verify(text.encode(), signature.raw):
            raise NoteError(f"the signature by {signature.name} does not verify")
        good.append(verifier)
    if not good:
        raise NoteError("no known key signed this note")
    return text, good


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text of this checkpoint."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint's note text."""
        _check_text(text)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has an origin, a size and a root hash")
        origin, size, root = lines[:3]
        if not origin:
            raise NoteError("a checkpoint's origin is not empty")
        if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size) or int(size) >= 1 << 64:
            raise NoteError("a checkpoint's size is a decimal number without leading zeros")
        root_bytes = _b64decode(root)
        if len(root_bytes) != 32:
            raise NoteError("a checkpoint's root hash is 32 bytes")
        extensions = tuple(lines[3:])
        if any(not line for line in extensions):
            raise NoteError("a checkpoint's extension lines are not empty")
        return cls(origin, int(size), root_bytes, extensions)


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a witness signs (tlog-cosignature, cosignature/v1): a header, the time, the checkpoint."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def cosign(text: str, signer: Signer, timestamp: int) -> str:
    """A witness's cosignature line over a checkpoint's note text, at a time in seconds since 1970."""
    if signer.alg != COSIGNATURE_V1:
        raise NoteError("only a witness key (cosignature/v1) cosigns")
    if not 0 <= timestamp < 1 << 63:
        raise NoteError("a cosignature's time is at most 2**63 - 1 (tlog-cosignature)")
    raw = struct.pack(">IQ", signer.key_hash, timestamp) + signer.sign(cosigned_message(text, timestamp))
    return f"{SIG_PREFIX}{signer.name} {base64.b64encode(raw).decode()}\n"


def verify_cosignature(text: str, line: str, verifier: Verifier) -> int | None:
    """The cosignature's time if ``line`` is this witness's valid cosignature over ``text``, else None."""
    if verifier.alg != COSIGNATURE_V1:
        return None
    try:
        _, signatures = split(text + "\n" + (line if line.endswith("\n") else line + "\n"))
    except NoteError:
        return None
    if len(signatures) != 1:
        return None
    signature = signatures[0]
    if (signature.name, signature.key_hash) != (verifier.name, verifier.key_hash) or len(signature.raw) != 72:
        return None
    timestamp = struct.unpack(">Q", signature.raw[:8])[0]
    if timestamp >= 1 << 63:
        return None
    if not verifier.verify(cosigned_message(text, timestamp), signature.raw[8:]):
        return None
    return timestamp
