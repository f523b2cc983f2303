"""Every table, imported in one place so SQLModel's metadata (and Alembic) sees them all."""

from sqlmodel import SQLModel

from trace import auth, history, locations, lots, organisations, products, units, users  # noqa: F401
from trace.events import models  # noqa: F401
from trace.printing import models as printing_models  # noqa: F401

metadata = SQLModel.metadata
