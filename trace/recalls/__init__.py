"""Holds and recalls: stopping a lot, and everything made from it, wherever it went.

``models`` (the tables and API shapes), ``holds`` (placing and lifting a hold), ``recall``
(recalling a lot's forward trace, reading recalls), ``report`` (the recall report, CSV and XLSX).
The tables are named here too, so ``trace.schema`` registers them by importing the package.
"""

from trace.recalls.models import Recall, RecallLot

__all__ = ["Recall", "RecallLot"]
