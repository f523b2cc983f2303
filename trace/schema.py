"""Every table, imported in one place so SQLModel's metadata (and Alembic) sees them all."""

from sqlmodel import SQLModel

from trace import (  # noqa: F401  # noqa: F401
    auth,
    certifications,
    history,
    locations,
    lots,
    organisations,
    product_images,
    products,
    recalls,
    units,
    users,
    web_sessions,
    webhooks,
)
from trace.designations import models as designation_models  # noqa: F401
from trace.epcis import models as epcis_models  # noqa: F401
from trace.events import models, verify_jobs  # noqa: F401
from trace.platform import changes  # noqa: F401
from trace.printing import models as printing_models  # noqa: F401
from trace.reports import models as report_models  # noqa: F401
from trace.reports import tallies as report_tallies  # noqa: F401
from trace.scans import models as scan_models  # noqa: F401
from trace.transparency import models as log_models  # noqa: F401

metadata = SQLModel.metadata
