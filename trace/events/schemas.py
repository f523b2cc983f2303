"""What a client sends to record each kind of event, and what it gets back."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, PrivateAttr, model_validator
from sqlmodel import Field, SQLModel

from trace.events.models import EventType
from trace.identifiers import validate_lot_code
from trace.units import UnitLevel

Quantity = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3)]
LotCode = Annotated[str, AfterValidator(validate_lot_code)]


class BizTransaction(SQLModel):
    type: Literal["inv", "desadv", "po", "recadv", "bol", "cert", "other"] = Field(
        description="CBV business transaction type: inv invoice, desadv delivery note, po purchase order, ..."
    )
    id: str = Field(min_length=1, max_length=100)


class EventCommon(SQLModel):
    event_time: datetime | None = Field(
        default=None, description="When it happened (with offset); default now, Asia/Ho_Chi_Minh when naive"
    )
    location_id: int | None = None
    biz_transactions: list[BizTransaction] = Field(default_factory=list, max_length=20)
    kde: dict[str, Any] = Field(
        default_factory=dict, description="Extra key data elements (private to the organisation)"
    )
    note: str | None = Field(default=None, max_length=1000)
    # Set by EPCIS capture, never by a client: the id the event was sent with, kept in its hashed payload
    # (verify-log then checks the stored EPCIS id against it, as it checks our own against the hash).
    _epcis_id: str | None = PrivateAttr(default=None)


class InputUsed(SQLModel):
    kind: Literal["fertiliser", "pesticide", "feed", "veterinary", "other"]
    name: str = Field(min_length=1, max_length=200)
    active_ingredient: str | None = Field(default=None, max_length=200)
    dose: str | None = Field(default=None, max_length=100)
    applied_on: date
    pre_harvest_interval_days: int | None = Field(
        default=None, ge=0, le=365, description="Days required between application and harvest"
    )


class HarvestIn(EventCommon):
    product_id: int
    lot_code: LotCode
    quantity: Quantity
    expiry_date: date | None = None
    inputs_used: list[InputUsed] = Field(default_factory=list, max_length=50)
    designation_ids: list[int] = Field(
        default_factory=list,
        max_length=5,
        description="Designations (GI, collective or certification marks) the lot claims",
    )


class ShipIn(EventCommon):
    lot_id: int
    quantity: Quantity
    destination_organisation_id: int
    destination_location_id: int | None = None


class ReceiveIn(EventCommon):
    shipment_id: int
    quantity: Quantity | None = Field(default=None, description="Default: everything still in transit")


class TransformInput(SQLModel):
    lot_id: int
    quantity: Quantity


class TransformOutput(SQLModel):
    product_id: int
    lot_code: LotCode
    quantity: Quantity
    expiry_date: date | None = None


class Conversion(SQLModel):
    input_unit: str = Field(max_length=10)
    output_unit: str = Field(max_length=10)
    factor: Decimal = Field(gt=0, max_digits=12, decimal_places=6, description="output units per input unit")


class TransformIn(EventCommon):
    inputs: list[TransformInput] = Field(min_length=1, max_length=100)
    outputs: list[TransformOutput] = Field(min_length=1, max_length=100)
    conversion: Conversion | None = None

    @model_validator(mode="after")
    def _distinct(self) -> TransformIn:
        if len({i.lot_id for i in self.inputs}) != len(self.inputs):
            raise ValueError("an input lot is listed twice")
        if len({(o.product_id, o.lot_code) for o in self.outputs}) != len(self.outputs):
            raise ValueError("an output lot is listed twice")
        return self


class CommissionIn(EventCommon):
    lot_id: int
    count: int = Field(gt=0, le=100_000)
    level: UnitLevel = Field(default=UnitLevel.UNIT, description="Consumer packages or cartons")
    override_reason: str | None = Field(
        default=None, min_length=10, max_length=500, description="Why more codes than the lot's packages are needed"
    )
    # Set by a print run, never by a client (a private attribute is not part of the input).
    _print_run_id: int | None = PrivateAttr(default=None)
    # Set by EPCIS capture (the serials a document names, ``count`` of them), never by a client.
    _serials: list[str] | None = PrivateAttr(default=None)


class DecommissionIn(EventCommon):
    """Void codes (a damaged sheet, a lost roll): from then on they read as not valid."""

    codes: list[str] = Field(min_length=1, max_length=100_000, description="Human codes of the units")
    reason: str = Field(min_length=3, max_length=500)


class UnitRef(SQLModel):
    lot_id: int
    serial: str = Field(min_length=1, max_length=20)


class PackIn(EventCommon):
    parent_id: str = Field(
        min_length=1, max_length=120, description="The carton or pallet: an SSCC or a unit's Digital Link"
    )
    children: list[UnitRef] = Field(min_length=1, max_length=10_000)


class SellIn(EventCommon):
    lot_id: int
    quantity: Quantity


class StoreIn(EventCommon):
    lot_id: int
    location_id: int  # type: ignore[assignment]


class InspectIn(EventCommon):
    lot_id: int
    result: Literal["pass", "warning", "fail"]
    photos: list[str] = Field(default_factory=list, max_length=20)


class LossIn(EventCommon):
    lot_id: int
    quantity: Quantity
    reason: Literal["spoilage", "damage", "sample", "other"]


class CorrectionIn(EventCommon):
    event_id: str = Field(min_length=1, max_length=36)
    reason: Literal["did_not_occur", "incorrect_data"] = Field(description="CBV error reason")


class EventLotPublic(SQLModel):
    lot_id: int
    role: str
    quantity: Decimal | None
    unit: str | None


class EventPublic(SQLModel):
    id: str
    type: EventType
    epcis_type: str
    action: str | None
    biz_step: str | None
    disposition: str | None
    event_time: datetime
    event_tz_offset: str
    record_time: datetime
    organisation_id: int
    actor_user_id: int | None
    location_id: int | None
    location_version: int | None
    source_organisation_id: int | None
    destination_organisation_id: int | None
    lot_id: int | None
    lots: list[EventLotPublic] = []
    biz_transactions: list[dict[str, str]] | None
    payload: dict[str, Any]
    corrects_event_id: str | None
    corrected_by_event_id: str | None = None
    hash: str
    prev_hash: str
    redacted: bool = False


class CaptureResult(SQLModel):
    """What a capture call returns; a retried call with the same idempotency key gets it again."""

    events: list[EventPublic] = Field(
        description="The recorded events (empty when the client asked for a minimal answer)"
    )
    event_ids: list[str] = Field(default_factory=list, description="Ids of the recorded events, in order")
    replayed: bool = False
    shipment_id: int | None = Field(default=None, description="The (last) shipment shipped or received")
    shipment_ids: list[int] = Field(default_factory=list, description="Every shipment, in the order of the events")
    lot_ids: list[int] = []
    serials: list[str] = []
