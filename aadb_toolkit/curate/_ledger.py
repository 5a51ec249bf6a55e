"""The curation ledger: one entry per input item that was not simply kept (an excluded row, answer,
vote or image; a flagged image; a label-file finding), each with its reason and location."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from ..errors import excerpt

#: Entry fields, in the order the report lists them.
ENTRY_FIELDS = ("kind", "action", "reason", "file", "row", "column", "image_id", "value", "detail")
#: What replaces a raw WorkerId wherever it appears in an entry's text.
REDACTED = "<redacted: WorkerId>"


@dataclass
class Ledger:
    """Collects report entries; every raw WorkerId (of ``redact``) in an entry's text fields is
    redacted before the entry is stored, since entries reach the report and the published folder."""

    entries: list[dict] = field(default_factory=list)
    redact: set[str] = field(default_factory=set)
    _cache: tuple[int, re.Pattern[str]] | None = field(default=None, repr=False)

    def add(self, kind: str, action: str, reason: str, *, file: str | None = None, row: int | None = None,
            column: str | None = None, image_id: str | None = None, value: object = None,
            detail: str | None = None) -> None:
        """Record one finding, its text fields (file, column, image_id, value, detail) redacted."""
        self.entries.append({
            "kind": kind, "action": action, "reason": reason, "file": self.redact_text(file),
            "row": None if row is None else int(row), "column": self.redact_text(column),
            "image_id": self.redact_text(image_id), "value": self.safe_value(value),
            "detail": self.redact_text(detail),
        })

    def add_frame(self, frame: pd.DataFrame, kind: str, action: str, *, file: str | None = None,
                  reason: str | None = None) -> None:
        """Record one finding per row of ``frame`` (columns named like the entry fields)."""
        if frame.empty:
            return
        cols = {c: frame[c].tolist() if c in frame else [None] * len(frame) for c in ENTRY_FIELDS}
        for i in range(len(frame)):
            self.add(kind, action, reason if reason is not None else cols["reason"][i],
                     file=cols["file"][i] if cols["file"][i] is not None else file,
                     row=cols["row"][i], column=cols["column"][i], image_id=cols["image_id"][i],
                     value=cols["value"][i], detail=cols["detail"][i])

    def safe_value(self, value: object) -> str | None:
        """A short printable prefix of an input value (:func:`~aadb_toolkit.errors.excerpt`), never a raw WorkerId."""
        if value is None or (isinstance(value, float) and value != value):
            return None
        # redacted before it is cut, so that no WorkerId is shortened past recognition
        return excerpt(self.redact_text(str(value)))

    def redact_text(self, text: str | None) -> str | None:
        """``text`` with every raw WorkerId in it replaced by :data:`REDACTED` (a text that is a
        short WorkerId as a whole, too): the one redaction every entry field goes through."""
        if text is None:
            return None
        text = str(text)
        if text.strip() in self.redact:
            return REDACTED
        return self._pattern().sub(REDACTED, text)

    def contains_worker_id(self, text: object) -> bool:
        """Whether ``text`` is or contains a raw WorkerId of ``redact``."""
        return self.redact_text(str(text)) != str(text)

    def _pattern(self) -> re.Pattern[str]:
        key = len(self.redact)
        if self._cache is None or self._cache[0] != key:
            ids = sorted((w for w in self.redact if len(w) >= 6), key=len, reverse=True)
            self._cache = (key, re.compile("|".join(map(re.escape, ids)) if ids else r"(?!x)x"))
        return self._cache[1]

    def counts(self, kind: str, action: str | None = None) -> dict[str, int]:
        """Number of entries of one kind (and action) per reason."""
        return dict(sorted(Counter(e["reason"] for e in self.entries
                                   if e["kind"] == kind and (action is None or e["action"] == action)).items()))
