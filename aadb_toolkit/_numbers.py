"""The one rule for numbers read from text files (curation's answer numbers, AVA's counts and ids):
ASCII digits only. Python's ``int()`` and ``str.isdigit()`` also accept other scripts' digits and
superscripts ("٣" is read as 3, "²" passes ``isdigit`` and then fails ``int``), so a file in another
numbering, or a corrupted one, would be read silently as something else; here it is not a number.

And the one range of the counts and seeds a command is given (:func:`check_count`,
:func:`check_seed`), so every command refuses the same values with the same words.
"""

from __future__ import annotations

import numbers
import re

from .errors import InputError, quote

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


#: The most bootstrap resamples (``--n-boot``) or permutations (``--n-perm``) a command draws: a
#: permutation p-value's resolution is then 1e-6 and an interval's ends move by far less than any
#: digit reported, while a resample's row of ρ per predictor stays well under a gigabyte. A larger
#: count is refused, not attempted (10**20 was numpy's error, or memory growing without bound).
MAX_RESAMPLES = 1_000_000


def check_count(value: object, name: str, *, low: int = 0, high: int = MAX_COUNT) -> int:
    """``value`` when it is a whole number (an int, not a bool or a float) from ``low`` to ``high``;
    else an InputError naming ``name`` (the option, ``--n-boot``, or the argument, ``n_boot``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise InputError(f"{name} must be a whole number from {low:,} to {high:,}, got {quote(value)}", field=name)
    return int(value)


def check_seed(value: object, name: str = "seed") -> int:
    """A seed: 0 (numpy's generators take no negative seed) to :data:`MAX_COUNT` (what a result
    document and ``consistency.json`` record, int64), for every command alike."""
    return check_count(value, name, high=MAX_COUNT)
