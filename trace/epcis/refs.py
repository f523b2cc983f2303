"""URIs of an EPCIS document → our rows (lots, products, places, parties), each looked up once."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from trace.epcis import vocab
from trace.errors import InvalidIdentifier
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation
from trace.products import Product


class Resolver:
    """Looks URIs up, remembering answers (a document names the same few places again and again)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[tuple[str, str], Any] = {}

    def _once(self, kind: str, uri: str, find: Any) -> Any:
        key = (kind, uri)
        if key not in self.cache:
            self.cache[key] = find()
        return self.cache[key]

    def ref(self, uri: str) -> vocab.Ref:
        """What a URI names; a malformed GS1 key reads as ``other``."""
        try:
            return vocab.read(uri)
        except InvalidIdentifier:
            return vocab.Ref("other")

    def lot(self, uri: str) -> int | None:
        """The lot an EPC class names (None if unknown)."""
        ref = self.ref(uri)
        if ref.kind != "lot":
            return None
        return self._once(
            "lot",
            uri,
            lambda: self.session.exec(select(Lot.id).where(Lot.gtin == ref.gtin, Lot.lot_code == ref.lot)).first(),
        )

    def forget_lots(self) -> None:
        """Lots may have been made since (an earlier part of the document): ask again."""
        self.cache = {k: v for k, v in self.cache.items() if k[0] != "lot" or v is not None}

    def product(self, gtin: str) -> int | None:
        """The product of a GTIN-14."""
        return self._once(
            "product", gtin, lambda: self.session.exec(select(Product.id).where(Product.gtin == gtin)).first()
        )

    def location(self, uri: str) -> int | None:
        """The location a URI names (GLN, our code URI, or our id URI)."""
        ref = self.ref(uri)

        def find() -> int | None:
            if ref.kind == "gln_location":
                return self.session.exec(select(Location.id).where(Location.gln == ref.gln)).first()
            if ref.kind == "location_code":
                return self.session.exec(
                    select(Location.id).where(Location.code == ref.code, Location.kind == ref.location_kind)
                ).first()
            if ref.kind == "location_id":
                return self.session.exec(select(Location.id).where(Location.id == ref.number)).first()
            return None

        return self._once("location", uri, find)  # type: ignore[no-any-return]

    def party(self, uri: str) -> int | None:
        """The organisation a URI names (party or location GLN, or our tax-code URI)."""
        ref = self.ref(uri)

        def find() -> int | None:
            if ref.kind in ("gln_party", "gln_location"):
                return self.session.exec(select(Organisation.id).where(Organisation.gln == ref.gln)).first()
            if ref.kind == "party_tax_code":
                return self.session.exec(select(Organisation.id).where(Organisation.tax_code == ref.code)).first()
            if ref.kind == "party_id":  # a household's URI as a reader without the right to its name got it
                return self.session.exec(select(Organisation.id).where(Organisation.id == ref.number)).first()
            return None

        return self._once("party", uri, find)  # type: ignore[no-any-return]
