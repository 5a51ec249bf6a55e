"""Curation of a raw AADB release (``AADB_AllinAll.csv``, the images, the label files) into the
canonical curated folder: validated ``images`` and ``ratings`` tables with anonymized rater IDs,
a manifest, and a report that accounts for every input row and image (docs/curation.md)."""

from ._anonymize import DEFAULT_KEY_FILE, KEY_FILE_ENV, RaterKey, anonymize, key_fingerprint, resolve_key
from ._pipeline import CurationResult, curate
from ._raw import AnswerColumns, BAD_VALUE_POLICIES, ROW_CONVENTION
from ._relocate import RelocationResult, relocate
from ._report import REPORT_JSON, REPORT_MD

__all__ = [
    "curate", "CurationResult", "relocate", "RelocationResult", "AnswerColumns", "BAD_VALUE_POLICIES", "ROW_CONVENTION", "REPORT_JSON", "REPORT_MD",
    "RaterKey", "resolve_key", "anonymize", "key_fingerprint", "KEY_FILE_ENV", "DEFAULT_KEY_FILE",
]
