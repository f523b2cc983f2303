"""trace.tlog.note against Go's golang.org/x/mod/sumdb/note, C2SP's specs and live witness cosignatures.

Vectors: golang/mod sumdb/note/note_test.go (the PeterNeumann and EnochRoot keys and notes, the malformed notes and
key manglings); C2SP signed-note.md (example.com/foo), tlog-checkpoint.md and tlog-cosignature.md (behind-the-sofa);
transparency-dev/formats note/note_cosigv1_test.go and log/checkpoint_test.go (key and checkpoint cases); a published
checkpoint of the arche2025h1.staging.ct.transparency.dev log carrying four witness cosignatures (each checked here
against its witness key with `cryptography` directly, so the vector stands on its own). Ed25519 is deterministic,
so every signature we make is compared byte for byte with one computed independently.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from trace.tlog.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    cosign,
    generate_key,
    open_note,
    sign,
    verify_cosignature,
)

EM = "\u2014"  # the em dash that opens a signature line
b64 = base64.b64encode
unb64 = base64.b64decode

# --- golang/mod sumdb/note/note_test.go ------------------------------------------------------------------------------

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_B64 = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
ENOCH_B64 = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
PETER_SIG = f"{EM} PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"{EM} EnochRoot {ENOCH_B64}\n"

# --- C2SP signed-note.md, tlog-checkpoint.md, tlog-cosignature.md ----------------------------------------------------

FOO_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
FOO_NOTE = (
    "This is an example message.\n\n"
    f"{EM} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
SOFA_ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
SOFA_TEXT = f"example.com/behind-the-sofa\n20852163\n{SOFA_ROOT}\n"
SOFA_TIME = 1679315147
# The message the spec shows a witness signing at SOFA_TIME.
SOFA_COSIGNED = (
    b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
    b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SOFA_WITNESS_B64 = (
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)

# --- a published, witnessed checkpoint -------------------------------------------------------------------------------

ARCHE_ORIGIN = "arche2025h1.staging.ct.transparency.dev"
ARCHE_TEXT = f"{ARCHE_ORIGIN}\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
ARCHE_VKEY = "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
ARCHE_TIME = 1779573024
WITNESSES = [  # (vkey, base64 cosignature)
    (
        "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM",
        "2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==",
    ),
    (
        "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
        "pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==",
    ),
    (
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==",
    ),
    (
        "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
        "Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==",
    ),
]
ARCHE_NOTE = (
    ARCHE_TEXT
    + "\n"
    # the log's RFC 6962 STH signature (type 0x05, unknown here), then its Ed25519 note signature
    + f"{EM} {ARCHE_ORIGIN} "
    "zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    + f"{EM} {ARCHE_ORIGIN} "
    "ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    + "".join(f"{EM} {vkey.split('+')[0]} {sig}\n" for vkey, sig in WITNESSES)
)


def _line(name: str, raw: bytes) -> str:
    return f"{EM} {name} {b64(raw).decode()}\n"


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _keys(name: str, seed: bytes, alg: int = 1) -> tuple[str, str, Ed25519PrivateKey, int]:
    """Signer and verifier key strings built here from a seed, as Go's note.GenerateKey writes them."""
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = bytes([alg]) + _raw_public(private)
    key_id = int.from_bytes(hashlib.sha256(name.encode() + b"\n" + public).digest()[:4], "big")
    skey = f"PRIVATE+KEY+{name}+{key_id:08x}+{b64(bytes([alg]) + seed).decode()}"
    return skey, f"{name}+{key_id:08x}+{b64(public).decode()}", private, key_id


def _ed25519_ok(public: bytes, sig: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, message)
    except InvalidSignature:
        return False
    return True


# --- keys ------------------------------------------------------------------------------------------------------------


def test_go_signer_key() -> None:
    signer = Signer(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_hash == 0xC74F20A3
    assert signer.verifier_key == PETER_VKEY


@pytest.mark.parametrize(
    ("vkey", "name", "key_hash"),
    [
        (PETER_VKEY, "PeterNeumann", 0xC74F20A3),
        (ENOCH_VKEY, "EnochRoot", 0xAF0CFE78),
        (FOO_VKEY, "example.com/foo", 0x530D903A),
        ("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", "TEST", 0x7997405C),  # '+' in the base64
        ("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8", "sum.golang.org", 0x033DE0AE),
        (ARCHE_VKEY, ARCHE_ORIGIN, 0xBA2F06C0),
        *((vkey, vkey.split("+")[0], int(vkey.split("+")[1], 16)) for vkey, _ in WITNESSES),
    ],
)
def test_published_verifier_keys(vkey: str, name: str, key_hash: int) -> None:
    verifier = Verifier(vkey)
    assert verifier.name == name
    assert verifier.key_hash == key_hash


def test_go_sign_known_answer() -> None:
    signer = Signer(PETER_SKEY)
    assert signer.sign(GO_TEXT.encode()) == unb64(PETER_B64)[4:]
    assert sign(GO_TEXT, signer) == GO_TEXT + "\n" + PETER_SIG


def test_go_signer_and_verifier_agree() -> None:
    """note_test.go testSignerAndVerifier, on a generated key."""
    skey, vkey = generate_key("EnochRoot")
    signer, verifier = Signer(skey), Verifier(vkey)
    assert signer.name == verifier.name == "EnochRoot"
    assert signer.key_hash == verifier.key_hash
    sig = signer.sign(b"hi")
    assert verifier.verify(b"hi", sig) is True
    assert verifier.verify(b"hi", bytes([sig[0] ^ 1]) + sig[1:]) is False
    assert verifier.verify(b"ii", sig) is False
    assert verifier.verify(b"hi", sig[:-1]) is False
    assert verifier.verify(b"hi", b"") is False


@pytest.mark.parametrize(("witness", "alg"), [(False, 0x01), (True, 0x04)])
def test_generate_key_format(witness: bool, alg: int) -> None:
    name = "example.com/log42"
    skey, vkey = generate_key(name, witness=witness)
    s = re.fullmatch(r"PRIVATE\+KEY\+example\.com/log42\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)", skey)
    v = re.fullmatch(r"example\.com/log42\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)", vkey)
    assert s and v
    private, public = unb64(s.group(2)), unb64(v.group(2))
    assert len(private) == len(public) == 33
    assert private[0] == public[0] == alg
    assert _raw_public(Ed25519PrivateKey.from_private_bytes(private[1:])) == public[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + public).digest()[:4].hex()
    assert s.group(1) == v.group(1) == key_id
    assert Signer(skey).verifier_key == vkey
    assert Signer(skey).key_hash == Verifier(vkey).key_hash == int(key_id, 16)
    assert generate_key(name, witness=witness) != (skey, vkey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "new\nline"])
def test_generate_key_refuses_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        generate_key(name)


def test_go_verifier_key_manglings() -> None:
    """note_test.go TestNewVerifier: no proper substring and no one-character change of the key is accepted."""
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    Verifier(PETER_VKEY[i:j])
    for i, c in enumerate(PETER_VKEY):
        with pytest.raises(NoteError):
            Verifier(PETER_VKEY[:i] + chr(ord(c) + 1) + PETER_VKEY[i + 1 :])


def test_go_signer_key_manglings() -> None:
    """note_test.go TestNewSigner."""
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(NoteError):
                    Signer(PETER_SKEY[i:j])
    for i, c in enumerate(PETER_SKEY):
        with pytest.raises(NoteError):
            Signer(PETER_SKEY[:i] + chr(ord(c) + 1) + PETER_SKEY[i + 1 :])


SIGSTORE_MATERIAL = (
    "AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9"
    "DPfkWLc="
)
PETER_PUBLIC = unb64(PETER_VKEY.split("+")[2])[1:]


@pytest.mark.parametrize(
    "vkey",
    [
        # note_test.go: wrong key length and unknown algorithm, each with its key hash adjusted
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # formats note_verifier_test.go / note_cosigv1_test.go
        "bananas.sigstore.dev+12344556",
        "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
        "rekor.sigstore.dev+12345678+AwEB",
        "rekor.sigstore.dev+NOT_A_NUMBER+" + SIGSTORE_MATERIAL,
        "rekor.sigstore.dev+00000000+" + SIGSTORE_MATERIAL,
        "rekor.sigstore.dev+c0d23d6a+" + SIGSTORE_MATERIAL,  # a real ECDSA (0x02) key: not Ed25519
        # hash mismatches
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+" + b64(b"\x04" + PETER_PUBLIC).decode(),  # the alg byte is part of the hash
        # form
        "",
        "+",
        "++",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUBLIC[:31]).decode(),
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUBLIC + b"\x00").decode(),
        "PeterNeumann+c74f20a3+" + b64(b"\x01").decode(),
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+0c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        PETER_SKEY,
    ],
)
def test_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(NoteError):
        Verifier(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        PETER_VKEY,
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumanm+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+" + b64(b"\x04" + unb64(PETER_SKEY.split("+")[4])[1:]).decode(),
        "PRIVATE+KEY+PeterNeumann+c74f20a3+" + b64(b"\x02" + unb64(PETER_SKEY.split("+")[4])[1:]).decode(),
        "PRIVATE+KEY+PeterNeumann+c74f20a3+" + b64(unb64(PETER_SKEY.split("+")[4])[:32]).decode(),
        "PRIVATE+KEY+PeterNeumann+c74f20a3+",
        "PRIVATE+KEY+",
        "",
    ],
)
def test_bad_signer_keys(skey: str) -> None:
    with pytest.raises(NoteError):
        Signer(skey)


def test_witness_key_hash_commits_to_alg_4() -> None:
    seed = hashlib.sha256(b"seed").digest()
    skey1, vkey1, _, id1 = _keys("example.com/k", seed, 0x01)
    skey4, vkey4, _, id4 = _keys("example.com/k", seed, 0x04)
    assert id1 != id4
    assert Verifier(vkey1).key_hash == Signer(skey1).key_hash == id1
    assert Verifier(vkey4).key_hash == Signer(skey4).key_hash == id4


# --- signed notes ----------------------------------------------------------------------------------------------------


def test_go_open() -> None:
    peter, enoch = Verifier(PETER_VKEY), Verifier(ENOCH_VKEY)
    msg = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    text, verified = open_note(msg, [peter])
    assert text == GO_TEXT
    assert verified == [peter]
    text, verified = open_note(msg, [peter, enoch])
    assert text == GO_TEXT
    assert len(verified) == 2 and {id(v) for v in verified} == {id(peter), id(enoch)}
    with pytest.raises(NoteError):
        open_note(msg, [])
    text, verified = open_note(GO_TEXT + "\n" + PETER_SIG, [enoch, peter, enoch])
    assert verified == [peter]


def test_c2sp_signed_note_example() -> None:
    verifier = Verifier(FOO_VKEY)
    assert open_note(FOO_NOTE, [verifier]) == ("This is an example message.\n", [verifier])


def test_go_open_duplicated_signatures() -> None:
    peter = Verifier(PETER_VKEY)
    enoch_abcd = ENOCH_SIG.encode()
    enoch_abcd = (enoch_abcd[:60] + b"ABCD" + enoch_abcd[60:]).decode()
    text, verified = open_note(GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd, [peter])
    assert text == GO_TEXT
    assert verified == [peter]


def test_go_open_invalid_signature_by_a_known_key() -> None:
    peter, enoch = Verifier(PETER_VKEY), Verifier(ENOCH_VKEY)
    raw = PETER_SIG.encode()
    bad = (raw[:60] + b"ABCD" + raw[60:]).decode()
    with pytest.raises(NoteError):
        open_note(GO_TEXT + "\n" + bad, [peter])
    sig = unb64(PETER_B64)
    flipped = _line("PeterNeumann", sig[:10] + bytes([sig[10] ^ 1]) + sig[11:])
    with pytest.raises(NoteError):
        open_note(GO_TEXT + "\n" + ENOCH_SIG + flipped, [peter, enoch])


def test_go_open_too_many_signatures() -> None:
    peter = Verifier(PETER_VKEY)
    for verifiers in ([peter], []):
        with pytest.raises(NoteError):
            open_note(GO_TEXT + "\n" + PETER_SIG * 101, verifiers)


def test_open_huge_signature_block() -> None:
    unknown = _line("someone.example", b"\x00\x00\x00\x01" + b"\x00" * 64)
    with pytest.raises(NoteError):
        open_note(GO_TEXT + "\n" + PETER_SIG + unknown * 20000, [Verifier(PETER_VKEY)])


def test_open_accepts_sixteen_signatures() -> None:
    """signed-note: verifiers MUST accept at least 16 signatures."""
    keys = [generate_key(f"signer{i}.example") for i in range(16)]
    msg = sign(GO_TEXT, *(Signer(skey) for skey, _ in keys))
    verifiers = [Verifier(vkey) for _, vkey in keys]
    text, verified = open_note(msg, verifiers)
    assert text == GO_TEXT
    assert {id(v) for v in verified} == {id(v) for v in verifiers}


@pytest.mark.parametrize(
    "msg",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        "\udcff" + GO_TEXT + "\n" + PETER_SIG,  # a byte that is not UTF-8, as surrogateescape decodes it
        GO_TEXT + "\n" + f"{EM} Bad Name {PETER_B64}",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        # further hostile forms
        "\x00" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT.replace(",", ",\t") + "\n" + PETER_SIG,
        GO_TEXT.replace("\n", "\r\n") + "\r\n" + PETER_SIG,
        GO_TEXT + "\n" + PETER_SIG.replace(EM, "-"),
        GO_TEXT + "\n" + PETER_SIG.replace(EM, "\u2013"),
        GO_TEXT + "\n" + PETER_SIG.replace(f"{EM} ", EM),
        GO_TEXT + "\n" + PETER_SIG.replace(" x08go", "  x08go"),
        GO_TEXT + "\n" + PETER_SIG.replace("x08go", "x08g!"),
        GO_TEXT + "\n" + PETER_SIG.replace("AM=\n", "AM\n"),
        GO_TEXT + "\n" + f"{EM} PeterNeumann \n",
        GO_TEXT + "\n" + f"{EM} PeterNeumann\n",
        GO_TEXT + "\n" + f"{EM}  {PETER_B64}\n",
        GO_TEXT + "\n" + f"{EM} PeterNeumann {b64(b'1234').decode()}\n",
        GO_TEXT + "\n" + f"{EM} Peter+Neumann {PETER_B64}\n",
        GO_TEXT + "\n" + PETER_SIG + "\n",
        GO_TEXT + "\n" + PETER_SIG + "\n" + ENOCH_SIG[:-1],
        "",
        "\n",
        "\n\n",
    ],
)
def test_go_malformed_notes(msg: str) -> None:
    with pytest.raises(NoteError):
        open_note(msg, [Verifier(PETER_VKEY)])


def test_unknown_keys_are_ignored() -> None:
    """signed-note: ignore signatures from unknown keys, even if they share a name or an id with a known key."""
    peter = Verifier(PETER_VKEY)
    same_name = Signer(generate_key("PeterNeumann")[0])
    assert same_name.key_hash != peter.key_hash
    name_twin = sign(GO_TEXT, same_name).split("\n\n", 1)[1]
    id_twin = _line("PeterNeumann2", unb64(PETER_B64)[:4] + b"\x00" * 64)
    text, verified = open_note(GO_TEXT + "\n" + name_twin + id_twin + PETER_SIG, [peter])
    assert (text, verified) == (GO_TEXT, [peter])
    with pytest.raises(NoteError):
        open_note(GO_TEXT + "\n" + name_twin + id_twin, [peter])
    misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    with pytest.raises(NoteError):
        open_note(GO_TEXT + "\n" + misnamed, [peter])
    wrong_hash = PETER_SIG.replace("x08g", "xxxx")
    with pytest.raises(NoteError):
        open_note(GO_TEXT + "\n" + wrong_hash, [peter])


def test_sign_refuses_text_without_final_newline() -> None:
    signer = Signer(PETER_SKEY)
    for text in ("abc", "", GO_TEXT[:-1]):
        with pytest.raises(NoteError):
            sign(text, signer)


def test_sign_refuses_text_that_is_not_utf8() -> None:
    with pytest.raises(ValueError):
        sign("caf\udce9\n", Signer(PETER_SKEY))


def test_sign_several_signers_in_order() -> None:
    peter = Signer(PETER_SKEY)
    skey, vkey = generate_key("EnochRoot")
    enoch = Signer(skey)
    msg = sign(GO_TEXT, peter, enoch)
    text, block = msg.split("\n\n")
    assert text + "\n" == GO_TEXT
    lines = block.splitlines(keepends=True)
    assert lines[0] == PETER_SIG
    assert lines[1].startswith(f"{EM} EnochRoot ")
    raw = unb64(lines[1].split(" ")[2])
    assert raw[:4] == struct.pack(">I", enoch.key_hash)
    assert _ed25519_ok(unb64(vkey.split("+", 2)[2])[1:], raw[4:], GO_TEXT.encode())
    _, verified = open_note(msg, [Verifier(PETER_VKEY), Verifier(vkey)])
    assert len(verified) == 2


QUASIMODO = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"


def _quasimodo() -> tuple[str, str, str]:
    """The C2SP signed-note example text (it holds a blank line), signed here: (skey, vkey, signed note)."""
    skey, vkey, private, key_id = _keys("quasimodo.example/salvatore", hashlib.sha256(b"quasimodo").digest())
    sig = struct.pack(">I", key_id) + private.sign(QUASIMODO.encode())
    return skey, vkey, QUASIMODO + "\n" + _line("quasimodo.example/salvatore", sig)


def test_c2sp_open_note_text_with_blank_lines() -> None:
    """signed-note: the text MAY contain empty lines; the last blank line separates the signatures."""
    _, vkey, msg = _quasimodo()
    verifier = Verifier(vkey)
    assert open_note(msg, [verifier]) == (QUASIMODO, [verifier])


def test_c2sp_sign_note_text_with_blank_lines() -> None:
    """Go's note.Sign signs any text ending in a newline, blank lines included."""
    skey, _, msg = _quasimodo()
    assert sign(QUASIMODO, Signer(skey)) == msg


def test_control_characters_refused_even_when_signed() -> None:
    """signed-note: no ASCII control characters but newline, whatever the signature says."""
    for text in ("a\tb\n", "a\rb\n", "a\x00b\n", "a\x1bb\n"):
        _, vkey, private, key_id = _keys("ctl.example", hashlib.sha256(b"ctl").digest())
        msg = text + "\n" + _line("ctl.example", struct.pack(">I", key_id) + private.sign(text.encode()))
        with pytest.raises(NoteError):
            open_note(msg, [Verifier(vkey)])


def test_replacement_character_is_valid_utf8() -> None:
    """U+FFFD is valid UTF-8: Go's Open refuses only undecodable bytes, so a note holding it opens."""
    text = "origin \ufffd\n1\n"
    skey, vkey, private, key_id = _keys("fffd.example", hashlib.sha256(b"fffd").digest())
    msg = text + "\n" + _line("fffd.example", struct.pack(">I", key_id) + private.sign(text.encode()))
    assert sign(text, Signer(skey)) == msg
    verifier = Verifier(vkey)
    assert open_note(msg, [verifier]) == (text, [verifier])


_line_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters=[chr(i) for i in range(32)] + ["\ufffd"]),
    min_size=1,
    max_size=40,
)


@settings(deadline=None, max_examples=60)
@given(st.lists(_line_text, min_size=1, max_size=6))
def test_sign_open_roundtrip(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    skey, vkey, private, key_id = _keys("roundtrip.example", hashlib.sha256(b"roundtrip").digest())
    msg = sign(text, Signer(skey))
    assert msg == text + "\n" + _line("roundtrip.example", struct.pack(">I", key_id) + private.sign(text.encode()))
    verifier = Verifier(vkey)
    assert open_note(msg, [verifier]) == (text, [verifier])
    tampered = text[:-1] + "!\n"
    with pytest.raises(NoteError):
        open_note(tampered + msg[len(text) :], [verifier])


# --- checkpoints -----------------------------------------------------------------------------------------------------


def test_c2sp_checkpoint_example() -> None:
    checkpoint = Checkpoint.parse(SOFA_TEXT)
    assert checkpoint == Checkpoint("example.com/behind-the-sofa", 20852163, unb64(SOFA_ROOT))
    assert checkpoint.extensions == ()
    assert checkpoint.text() == SOFA_TEXT


def test_published_checkpoint_opens_and_parses() -> None:
    log = Verifier(ARCHE_VKEY)
    text, verified = open_note(ARCHE_NOTE, [log])
    assert (text, verified) == (ARCHE_TEXT, [log])
    checkpoint = Checkpoint.parse(text)
    assert (checkpoint.origin, checkpoint.size) == (ARCHE_ORIGIN, 1432088532)
    assert checkpoint.root == unb64("U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=")
    assert checkpoint.text() == ARCHE_TEXT
    with pytest.raises(NoteError):
        open_note(ARCHE_NOTE.replace("1432088532", "42"), [log])


ROOT32 = bytes(range(32))
ROOT32_B64 = b64(ROOT32).decode()


def test_checkpoint_extension_lines() -> None:
    """formats log/checkpoint_test.go TestExtendCheckpoint, with a 32-byte root."""
    raw = f"Moon Log\n4027504\n{ROOT32_B64}\n6086d1a9\nWaxing gibbous\n"
    checkpoint = Checkpoint.parse(raw)
    assert checkpoint == Checkpoint("Moon Log", 4027504, ROOT32, ("6086d1a9", "Waxing gibbous"))
    assert checkpoint.text() == raw


def test_checkpoint_text_layout() -> None:
    assert Checkpoint("Log", 123, ROOT32).text() == f"Log\n123\n{ROOT32_B64}\n"
    assert Checkpoint("Log", 0, hashlib.sha256(b"").digest()).text() == (
        "Log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    assert Checkpoint("Log", 1, ROOT32, ("a", "b c")).text() == f"Log\n1\n{ROOT32_B64}\na\nb c\n"


def test_checkpoint_sizes_at_the_edges() -> None:
    assert Checkpoint.parse(f"Log\n0\n{ROOT32_B64}\n").size == 0
    assert Checkpoint.parse(f"Log\n18446744073709551615\n{ROOT32_B64}\n").size == 2**64 - 1


def test_checkpoint_is_frozen() -> None:
    checkpoint = Checkpoint.parse(SOFA_TEXT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        checkpoint.size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "size",
    [
        "-1",
        "-34",
        "01",
        "00",
        "1e3",
        "+1",
        " 1",
        "1 ",
        "0x10",
        "1_000",
        "\u0661\u0662",  # Arabic-Indic digits: int() reads them
        "\uff11",  # a full-width 1
        "",
        "bananas",
        "18446744073709551616",
        "3438945738945739845734895735",
    ],
)
def test_checkpoint_bad_sizes(size: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(f"Log\n{size}\n{ROOT32_B64}\n")


@pytest.mark.parametrize(
    "root",
    [
        b64(ROOT32[:31]).decode(),
        b64(ROOT32 + b"\x00").decode(),
        "YmFuYW5hcw==",  # "bananas": formats accepts any length, a checkpoint's SHA-256 root is 32 bytes
        "ThisIsn'tBase64",
        "",
        " " + ROOT32_B64,
        ROOT32_B64.rstrip("="),
        SOFA_ROOT.replace("/", "_"),  # URL-safe base64 is not the standard alphabet
    ],
)
def test_checkpoint_bad_roots(root: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(f"Log\n1\n{root}\n")


@pytest.mark.parametrize(
    "text",
    [
        "Head\n9944\n",
        f"Log\n123\n{ROOT32_B64}",
        f"\n9944\n{ROOT32_B64}\n",
        f"Log\n1\n{ROOT32_B64}\n\n",
        f"Log\n1\n{ROOT32_B64}\next\n\n",
        f"Log\r\n1\r\n{ROOT32_B64}\r\n",
        f"L\x00g\n1\n{ROOT32_B64}\n",
        f"L\tg\n1\n{ROOT32_B64}\n",
        "",
        "\n",
    ],
)
def test_checkpoint_bad_forms(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


@settings(deadline=None)
@given(
    _line_text,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(_line_text, max_size=3).map(tuple),
)
def test_checkpoint_roundtrip(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    checkpoint = Checkpoint(origin, size, root, extensions)
    text = checkpoint.text()
    assert text == "".join(f"{line}\n" for line in (origin, str(size), b64(root).decode(), *extensions))
    assert Checkpoint.parse(text) == checkpoint


# --- cosignatures ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("vkey", "sig"), WITNESSES)
def test_live_witness_cosignatures(vkey: str, sig: str) -> None:
    verifier = Verifier(vkey)
    line = f"{EM} {verifier.name} {sig}\n"
    assert verify_cosignature(ARCHE_TEXT, line, verifier) == ARCHE_TIME
    assert verify_cosignature(ARCHE_TEXT.replace("1432088532", "42"), line, verifier) is None
    raw = unb64(sig)
    later = _line(verifier.name, raw[:4] + struct.pack(">Q", ARCHE_TIME + 1) + raw[12:])
    assert verify_cosignature(ARCHE_TEXT, later, verifier) is None
    flipped = _line(verifier.name, raw[:40] + bytes([raw[40] ^ 1]) + raw[41:])
    assert verify_cosignature(ARCHE_TEXT, flipped, verifier) is None
    for other, _ in WITNESSES:
        if other != vkey:
            assert verify_cosignature(ARCHE_TEXT, line, Verifier(other)) is None


def test_live_witness_cosignatures_check_independently() -> None:
    """The vector itself: each line is cosignature/v1 over the checkpoint, by its witness key (alg 0x04)."""
    for vkey, sig in WITNESSES:
        name, key_id, key = vkey.split("+", 2)
        public, raw = unb64(key), unb64(sig)
        assert public[0] == 0x04
        assert hashlib.sha256(name.encode() + b"\n" + public).digest()[:4].hex() == key_id == raw[:4].hex()
        assert struct.unpack(">Q", raw[4:12])[0] == ARCHE_TIME
        message = f"cosignature/v1\ntime {ARCHE_TIME}\n".encode() + ARCHE_TEXT.encode()
        assert _ed25519_ok(public[1:], raw[12:], message)


def test_log_key_is_not_a_witness_key() -> None:
    line = f"{EM} {WITNESSES[2][0].split('+')[0]} {WITNESSES[2][1]}\n"
    assert verify_cosignature(ARCHE_TEXT, line, Verifier(ARCHE_VKEY)) is None
    assert verify_cosignature(GO_TEXT, PETER_SIG, Verifier(PETER_VKEY)) is None


def test_c2sp_cosignature_layout() -> None:
    """tlog-cosignature: base64(key id || u64 big-endian timestamp || 64-byte Ed25519 signature)."""
    raw = unb64(SOFA_WITNESS_B64)
    assert len(raw) == 4 + 8 + 64
    assert raw[4:12] == struct.pack(">Q", SOFA_TIME)
    skey, vkey, private, key_id = _keys("witness.example.com/w1", hashlib.sha256(b"w1").digest(), 0x04)
    line = cosign(SOFA_TEXT, Signer(skey), SOFA_TIME)
    want = _line("witness.example.com/w1", struct.pack(">IQ", key_id, SOFA_TIME) + private.sign(SOFA_COSIGNED))
    assert line == want
    assert verify_cosignature(SOFA_TEXT, line, Verifier(vkey)) == SOFA_TIME


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**63 - 1))
def test_cosign_matches_an_independent_signature(timestamp: int) -> None:
    skey, vkey, private, key_id = _keys("witness.example/w2", hashlib.sha256(b"w2").digest(), 0x04)
    line = cosign(ARCHE_TEXT, Signer(skey), timestamp)
    message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + ARCHE_TEXT.encode()
    assert line == _line("witness.example/w2", struct.pack(">IQ", key_id, timestamp) + private.sign(message))
    assert verify_cosignature(ARCHE_TEXT, line, Verifier(vkey)) == timestamp


def test_generated_witness_key_cosigns() -> None:
    skey, vkey = generate_key("witness.example/w3", witness=True)
    line = cosign(SOFA_TEXT, Signer(skey), 1)
    assert line.startswith(f"{EM} witness.example/w3 ") and line.endswith("\n")
    raw = unb64(line.split(" ")[2])
    public = unb64(vkey.split("+", 2)[2])
    assert raw[:4].hex() == vkey.split("+")[1]
    assert _ed25519_ok(public[1:], raw[12:], b"cosignature/v1\ntime 1\n" + SOFA_TEXT.encode())
    assert verify_cosignature(SOFA_TEXT, line, Verifier(vkey)) == 1


def test_cosignature_covers_extension_lines() -> None:
    """formats TestSigCoversExtensionLines."""
    skey, vkey = generate_key("witness.example/w4", witness=True)
    with_extension = SOFA_TEXT + "Extendo\n"
    line = cosign(with_extension, Signer(skey), 7)
    assert verify_cosignature(with_extension, line, Verifier(vkey)) == 7
    assert verify_cosignature(SOFA_TEXT, line, Verifier(vkey)) is None
    assert verify_cosignature(SOFA_TEXT + "Extend@\n", line, Verifier(vkey)) is None


def test_cosign_refuses_note_keys() -> None:
    with pytest.raises(NoteError):
        cosign(SOFA_TEXT, Signer(PETER_SKEY), 1)


def test_cosign_time_bounds() -> None:
    """tlog-cosignature: the timestamp is a u64 that MUST NOT exceed 2^63 - 1."""
    witness = Signer(generate_key("witness.example/w5", witness=True)[0])
    for timestamp in (0, 2**63 - 1):
        assert verify_cosignature(SOFA_TEXT, cosign(SOFA_TEXT, witness, timestamp), Verifier(witness.verifier_key)) == (
            timestamp
        )
    for timestamp in (-1, 2**63, 2**64):
        with pytest.raises(NoteError):
            cosign(SOFA_TEXT, witness, timestamp)


def test_note_key_cosignature_is_not_a_witness_cosignature() -> None:
    """A cosignature/v1 line made with a note key (alg 0x01, its own key id) is no witness's cosignature."""
    _, vkey, private, key_id = _keys("log.example", hashlib.sha256(b"log").digest(), 0x01)
    message = b"cosignature/v1\ntime 9\n" + SOFA_TEXT.encode()
    line = _line("log.example", struct.pack(">IQ", key_id, 9) + private.sign(message))
    assert verify_cosignature(SOFA_TEXT, line, Verifier(vkey)) is None


def test_witness_key_cannot_pass_as_a_plain_note_signature() -> None:
    """A cosignature line is no note signature of the same text under a note key of the same seed."""
    seed = hashlib.sha256(b"twin").digest()
    skey4, _, _, _ = _keys("twin.example", seed, 0x04)
    _, vkey1, _, _ = _keys("twin.example", seed, 0x01)
    line = cosign(SOFA_TEXT, Signer(skey4), 5)
    with pytest.raises(NoteError):
        open_note(SOFA_TEXT + "\n" + line, [Verifier(vkey1)])
    assert verify_cosignature(SOFA_TEXT, line, Verifier(vkey1)) is None


@pytest.mark.parametrize(
    "line",
    [
        "",
        "\n",
        "garbage\n",
        f"{EM} \n",
        f"{EM} remora.n621.de\n",
        f"{EM} remora.n621.de !!!\n",
        f"{EM} remora.n621.de {b64(bytes.fromhex('da77ade7')).decode()}\n",
        f"{EM} remora.n621.de {b64(bytes.fromhex('da77ade7') + bytes(64)).decode()}\n",
        f"{EM} remora.n621.de {b64(bytes.fromhex('da77ade7') + bytes(72)).decode()}\n",
        f"{EM} remora.n621.de {b64(bytes.fromhex('da77ade7') + bytes(73)).decode()}\n",
        f"{EM} remora.n621.de {WITNESSES[2][1]}\n{EM} remora.n621.de {WITNESSES[2][1]}\n",
        f"{EM} remora.n621.de\x00 {WITNESSES[2][1]}\n",
        f"- remora.n621.de {WITNESSES[2][1]}\n",
        f"{EM} remora.n621.de  {WITNESSES[2][1]}\n",
    ],
)
def test_hostile_cosignature_lines(line: str) -> None:
    assert verify_cosignature(ARCHE_TEXT, line, Verifier(WITNESSES[2][0])) is None
