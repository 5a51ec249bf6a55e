"""The one rule for numbers read from text files (curation's answer numbers, AVA's counts and ids):
ASCII digits only. Python's ``int()`` and ``str.isdigit()`` also accept other scripts' digits and
superscripts ("٣" is read as 3, "²" passes ``isdigit`` and then fails ``int``), so a file in another
numbering, or a corrupted one, would be read silently as something else; here it is not a number.
"""

from __future__ import annotations

import re

#: An answer number: ASCII digits with an optional sign and an optional decimal part ("5", "+1",
#: "5.0"; "3.5" is a number, out of range); anything else ("1e0", "٣", "0x5", "inf", "5_0") is not.
ANSWER_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)

#: A label value (the release's label files): ASCII digits with an optional sign, decimal part and
#: exponent ("0.6", "-.25", "5e-01"); "٣", "１", "1_0" and "inf", which Python's ``float()`` reads,
#: are not numbers.
LABEL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)

#: A count or an integer id: ASCII digits only, no sign.
COUNT = re.compile(r"[0-9]+", re.ASCII)

#: The largest count the toolkit stores (int64); a larger one is an error, not a wrapped value.
MAX_COUNT = 2**63 - 1


def is_count(text: str) -> bool:
    """Whether ``text`` is a non-negative integer in ASCII digits that fits an int64."""
    return COUNT.fullmatch(text) is not None and int(text) <= MAX_COUNT
