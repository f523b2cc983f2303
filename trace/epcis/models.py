"""Each event's EPCIS event id, kept beside the append-only event row."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

# ni:///sha-256;<64 hex>?ver=CBV2.0 is 92 characters; ids other systems send may be any URI.
EPCIS_ID_LENGTH = 300


class EpcisEventId(SQLModel, table=True):
    """The EPCIS ``eventID`` of an event: its CBV 2.0 hash id, or the id it was captured with."""

    __tablename__ = "epcis_event_id"

    # No foreign key, like lot.created_event_id and shipment.event_id: the log's tamper checks delete
    # event rows behind the application's back, and these rows are written only beside new events.
    event_id: str = Field(primary_key=True, max_length=36)
    epcis_id: str = Field(unique=True, index=True, max_length=EPCIS_ID_LENGTH)
