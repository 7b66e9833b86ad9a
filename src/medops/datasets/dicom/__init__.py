"""DICOM for datasets: de-identification by PS3.15 Annex E (``deidentify``, ``profile``,
``uids``, ``values``; the action table ``annex_e.csv`` generated from the standard's Table E.1-1 by
``generate_annex_e``) and a per-series index read from headers only (``index``)."""

from medops.datasets.dicom.deidentify import Deidentifier, DeidResult, MappingEntry, is_part10
from medops.datasets.dicom.index import SeriesInfo, series_of
from medops.datasets.dicom.profile import DeidMethod, DeidOptions, MethodCode

__all__ = [
    "DeidMethod",
    "DeidOptions",
    "DeidResult",
    "Deidentifier",
    "MappingEntry",
    "MethodCode",
    "SeriesInfo",
    "is_part10",
    "series_of",
]
