"""Check a hytrace instance's public log over HTTP alone, as a consumer, a journalist or a witness would.

    python -m trace.logcheck https://truyxuat.hungyen.gov.vn --state ~/.hytrace-log.json --key 'KEY'
    python -m trace.logcheck URL --state FILE --unit 'https://…/01/…/10/…/21/…'
    python -m trace.logcheck URL --state FILE --witness-key FILE   (check, then cosign and send it back)

It fetches the newest signed checkpoint, checks its signature against the pinned verifier key (given with
``--key`` on the first run and kept in the state file: never trusted on first use), checks the consistency
proof from the checkpoint it kept last time (RFC 9162 §2.1.4) and keeps the new one. A log that went back,
forked or is not a prefix of what it showed before exits 1 and says which tree sizes disagree. ``--unit``
also checks that every event of a label's journey is in the signed tree, and that the log recorded each as
the public EPCIS document shows it.

It uses only the standard library, httpx, cryptography and ``trace.tlog`` (pure RFC 9162 and C2SP code), so
it can be copied out with that folder; a test proves it imports nothing else of ours.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx

from trace.tlog import merkle, note

OK, BROKEN, ERROR = 0, 1, 2
# Fields the public EPCIS document may show differently from the log: who a party is (a household that
# consented is named on the page, by number in the log) and farming inputs an organisation chose to publish.
PARTY_FIELDS = frozenset({"hytrace:organisation", "sourceList", "destinationList", "hytrace:inputsUsed"})


class CheckFailed(Exception):
    """The log is not what it showed before, or not what it says."""


class Unavailable(Exception):
    """The log cannot be read now (not running yet, no checkpoint yet): try again later."""


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except ValueError as error:
        raise SystemExit(f"error: {path} is not a logcheck state file: {error}") from None
    return state


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(handle, "w") as out:
        json.dump(state, out, indent=2, sort_keys=True)
    os.replace(name, path)  # the old state stays whole until the new one is


def _get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    answer = client.get(path, params=params or None)
    if answer.status_code != 200:
        raise CheckFailed(f"GET {path} answered {answer.status_code}: {answer.text[:200]}")
    return answer


def _b64(values: Sequence[str]) -> list[bytes]:
    return [base64.b64decode(v, validate=True) for v in values]


NEXT_KEY = "hytrace-key "  # the extension line by which a checkpoint the old key signs announces the new key


def announced_key(signed: str, text: str, checkpoint: note.Checkpoint, pinned: note.Verifier) -> str | None:
    """A new key this checkpoint announces (signed by the pinned key and by the new one), else None."""
    for line in checkpoint.extensions:
        if line.startswith(NEXT_KEY) and line[len(NEXT_KEY) :] != pinned.key:
            try:
                new = note.Verifier(line[len(NEXT_KEY) :])
                note.open_note(signed, [new])
            except note.NoteError as error:
                raise CheckFailed(f"the checkpoint announces a key that did not sign it: {error}") from None
            return new.key
    return None


def fetch_checkpoint(client: httpx.Client, verifier: note.Verifier) -> tuple[str, note.Checkpoint, str]:
    """The newest checkpoint's note text, body and whole signed note, its signature checked."""
    answer = client.get("/api/v1/log/checkpoint")
    if answer.status_code in (404, 429, 502, 503):
        raise Unavailable(f"GET /api/v1/log/checkpoint answered {answer.status_code}")
    if answer.status_code != 200:
        raise CheckFailed(f"GET /api/v1/log/checkpoint answered {answer.status_code}: {answer.text[:200]}")
    signed = answer.text
    try:
        text, _ = note.open_note(signed, [verifier])
        return text, note.Checkpoint.parse(text), signed
    except note.NoteError as error:
        raise CheckFailed(f"the checkpoint does not verify with the pinned key: {error}") from None


def check_consistency(client: httpx.Client, old: note.Checkpoint, new: note.Checkpoint) -> None:
    """Raise unless the tree ``old`` describes is a prefix of the one ``new`` describes."""
    if new.origin != old.origin:
        raise CheckFailed(f"the log's origin changed from {old.origin!r} to {new.origin!r}")
    if new.size < old.size:
        raise CheckFailed(
            f"the log went back: it now has {new.size} leaves, it showed {old.size} before (tree sizes "
            f"{old.size} and {new.size} disagree)"
        )
    if new.size == old.size:
        if new.root != old.root:
            raise CheckFailed(f"the log forked: two different roots for tree size {new.size}")
        return
    proof = _get(client, "/api/v1/log/proof/consistency", first=old.size, second=new.size).json()
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, _b64(proof["proof"])):
        raise CheckFailed(
            f"tree sizes {old.size} and {new.size} disagree: the tree of {old.size} leaves it showed before is "
            f"not a prefix of the tree of {new.size} leaves"
        )


def _label_path(unit: str) -> str:
    # The label's own URL, whatever host it names: its path is asked of the instance being checked.
    return httpx.URL(unit).raw_path.decode()


def check_unit(client: httpx.Client, unit: str, checkpoint: note.Checkpoint) -> int:
    """Every event of a label's journey is in the signed tree, recorded as the public document shows it."""
    answer = client.get(_label_path(unit), params={"linkType": "gs1:epcis"}, headers={"Accept": "application/ld+json"})
    if answer.status_code != 200:
        raise CheckFailed(f"the label's events could not be read: {answer.status_code}")
    events = answer.json().get("epcisBody", {}).get("eventList", [])
    if not events:
        raise CheckFailed("the label's journey has no events")
    for shown in events:
        event_id = shown["eventID"]
        proof = _get(client, "/api/v1/log/proof/inclusion", event=event_id, size=checkpoint.size).json()
        leaf = merkle.leaf_hash(proof["entry"].encode())
        if not merkle.verify_inclusion(
            proof["leaf_index"], checkpoint.size, leaf, _b64(proof["proof"]), checkpoint.root
        ):
            raise CheckFailed(f"event {event_id} is not included in the signed tree of {checkpoint.size} leaves")
        logged = json.loads(proof["entry"])["event"]
        differs = sorted(k for k in set(logged) | set(shown) if k not in PARTY_FIELDS and logged.get(k) != shown.get(k))
        if differs:
            raise CheckFailed(f"event {event_id}: the page shows {', '.join(differs)} otherwise than the log recorded")
    return len(events)


def cosign(client: httpx.Client, text: str, witness: note.Signer) -> None:
    """Cosign a checkpoint this run checked and send the cosigned note to the log."""
    line = note.cosign(text, witness, int(time.time()))
    answer = client.post(
        "/api/v1/log/cosignatures", content=(text + "\n" + line).encode(), headers={"Content-Type": "text/plain"}
    )
    if answer.status_code not in (200, 201):
        raise CheckFailed(f"the log refused the cosignature: {answer.status_code} {answer.text[:200]}")


def run(args: argparse.Namespace, client: httpx.Client | None = None) -> int:
    """One check (through ``client`` if given, else a client of ``args.url``); the exit code."""
    state_path = Path(args.state).expanduser()
    state = _load(state_path)
    key = args.key or state.get("key")
    if not key:
        print("error: pin the log's verifier key with --key on the first run (GET /api/v1/log/key)", file=sys.stderr)
        return ERROR
    if args.key and state.get("key") and args.key != state["key"]:
        print("error: --key differs from the key this state file pinned; use another state file", file=sys.stderr)
        return ERROR
    try:
        verifier = note.Verifier(key)
        witness = note.Signer(Path(args.witness_key).read_text()) if args.witness_key else None
    except (note.NoteError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    try:
        opened: AbstractContextManager[httpx.Client] = (
            nullcontext(client)
            if client is not None
            else httpx.Client(base_url=args.url.rstrip("/"), timeout=args.timeout)
        )
        with opened as http:
            text, checkpoint, signed = fetch_checkpoint(http, verifier)
            rotated = announced_key(signed, text, checkpoint, verifier)
            if state.get("checkpoint"):
                check_consistency(http, note.Checkpoint.parse(state["checkpoint"]), checkpoint)
            checked = check_unit(http, args.unit, checkpoint) if args.unit else 0
            if witness is not None:
                cosign(http, text, witness)
    except CheckFailed as failed:
        print(f"FAILED: {failed}")
        return BROKEN
    except (httpx.HTTPError, Unavailable, ValueError, KeyError, TypeError) as error:
        print(f"error: the log could not be read: {error}", file=sys.stderr)
        return ERROR
    previous = note.Checkpoint.parse(state["checkpoint"]).size if state.get("checkpoint") else None
    _save(state_path, {"key": rotated or key, "checkpoint": text, "url": args.url})
    if rotated:
        print(f"ok: the log moved to a new key, announced in a checkpoint the pinned key signed; pinned {rotated}")
    since = f", consistent with the {previous} leaves seen before" if previous is not None else ""
    print(f"ok: {checkpoint.origin}: {checkpoint.size} leaves, signed{since}")
    if args.unit:
        print(f"ok: all {checked} events of the label's journey are in the signed tree, as the page shows them")
    if witness is not None:
        print(f"ok: cosigned by {witness.name} and sent")
    return OK


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(prog="python -m trace.logcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the instance's public base URL")
    parser.add_argument("--state", required=True, metavar="FILE", help="where the last checkpoint seen is kept")
    parser.add_argument("--key", help="the log's verifier key (pinned in the state file on the first run)")
    parser.add_argument("--unit", metavar="LABEL_URL", help="also check every event of this label's journey")
    parser.add_argument("--witness-key", metavar="FILE", help="a witness signer key: cosign what was checked")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    parser.add_argument("--every", type=float, metavar="SECONDS", help="check again every so many seconds")
    return parser


def main(argv: Sequence[str] | None = None, client: httpx.Client | None = None) -> int:
    """Parse the arguments and run one check (``--every``: one check every so many seconds, for ever)."""
    args = build_parser().parse_args(argv)
    if not args.every:
        return run(args, client)
    while True:  # a witness: a failed check is printed and the state kept as it was; it checks on
        code = run(args, client)
        sys.stdout.flush()
        if code == ERROR and not Path(args.state).expanduser().exists() and not args.key:
            return code  # nothing pinned: it would fail for ever
        time.sleep(args.every if code != ERROR else min(args.every, 2.0))  # not up yet: soon again


if __name__ == "__main__":
    sys.exit(main())
