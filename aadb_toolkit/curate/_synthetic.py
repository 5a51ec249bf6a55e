"""The generator's setting of a simulated release, as curation records it in the manifest.

``aadb simulate`` writes ``setting.json`` into the planted truth beside the release
(:func:`aadb_toolkit.schema.simulated_truth_dir`). Curation copies its name, its overrides, its
generation options (quirks, random-rater share, image size; since the truth's format 2) and the
sha256 of its parameters and options into ``manifest.json``, so that data loaded from the curated folder
(:class:`aadb_toolkit.data.Provenance`) and every result made from it say which planted setting
they came from. The file is checked like any input: small, the expected fields, plain values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import schema
from .._atomic import small_json_object
from .._paths import inside
from ..data import setting_record
from ..errors import InputError
from ..sources import is_simulated_release

#: The setting file holds every parameter of the generator: a few KiB; anything far larger is not one.
_MAX_BYTES = 1 << 20


def synthetic_setting(release: Path) -> dict[str, Any] | None:
    """``{"setting", "overrides", "sha256"}`` of a simulated release's setting, or None when the
    release is not one the simulator wrote (no marker of that kind inside it: real data, whose
    sibling folders are never read) or its truth predates settings (no setting file). The setting
    file must lie in the truth folder: a link leading out is an error, never read."""
    if not is_simulated_release(release):
        return None
    truth = schema.simulated_truth_dir(release)
    file = truth / schema.SIMULATED_SETTING_FILE
    if not (file.is_file() or file.is_symlink()):
        return None
    if not inside(truth, file):
        raise InputError("leads outside the release's truth folder (a symbolic link); not read", file=str(file))
    record = small_json_object(file, _MAX_BYTES)
    if record is None:
        raise InputError("is not a JSON object of at most 1 MiB; simulate the release again (aadb simulate)",
                         file=str(file))
    try:
        return setting_record(record)
    except ValueError as exc:
        raise InputError(str(exc), file=str(file), field=exc.args[1] if len(exc.args) > 1 else None) from None
