"""Numbers from the AADB paper (Kong et al., ECCV 2016): its hyperparameters and its reported
results. They live here once; configs, the leaderboard's "reported" rows and the docs read them.
The reported results keep the digits the paper printed (``0.6450``, not ``0.645``), so tables quote
them as printed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

#: How tables name the paper when they quote its numbers.
SOURCE: Final[str] = "Kong et al. ECCV 2016"
CITATION: Final[str] = """@inproceedings{kong2016aesthetics,
  title     = {Photo Aesthetics Ranking Network with Attributes and Content Adaptation},
  author    = {Kong, Shu and Shen, Xiaohui and Lin, Zhe and Mech, Radomir and Fowlkes, Charless},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {662--679},
  year      = {2016}
}"""

#: Significant digits of a number derived from the paper's (a mean of two of its cells) as tables
#: print it in full: ten drop the binary noise of arithmetic (72.85 / 100 → 0.7284999999999999 → 0.7285).
REPORTED_DIGITS: Final[int] = 10
#: The paper's text of each number it reports, by value: a table beside ours shows ``0.6450`` where
#: the paper printed that, not the float's shortest spelling ``0.645``. Filled by :func:`_printed`.
_PRINTED: dict[float, str] = {}


def _printed(text: str) -> float:
    """A reported number as the paper prints it: the float code computes with, its text kept for
    :func:`as_reported`. One value printed two ways would make that text ambiguous: refused."""
    value = float(text)
    if _PRINTED.setdefault(value, text) != text:
        raise ValueError(f"the paper's number {value!r} is printed both as {_PRINTED[value]!r} and {text!r}")
    return value


def as_reported(value: float) -> str:
    """A number of the paper as the paper prints it, trailing zeros kept (``0.6450``, ``68.00``); one
    derived from them that the paper does not print, in full without binary noise (``0.7285``, not
    ``0.7284999999999999``): the one rule for quoting the paper's numbers in full."""
    number = float(value)
    return _PRINTED.get(number) or f"{number:.{REPORTED_DIGITS}g}"


def percent_as_fraction(percent: float) -> float:
    """A percentage the paper reports, as a fraction whose printed text moves the paper's decimal
    point (72.85 → ``0.7285``, 68.00 → ``0.6800``): no digit gained from binary noise, none lost."""
    return _printed(format(Decimal(as_reported(percent)).scaleb(-2), "f"))


# --- Training details (paper §4.5, §5.3) ----------------------------------------------------
WARP_SIZE: Final[int] = 256
CROP_SIZE: Final[int] = 227
LEARNING_RATE: Final[float] = 1e-4
LR_ANNEAL_FACTOR: Final[float] = 0.1
MOMENTUM: Final[float] = 0.9
WEIGHT_DECAY: Final[float] = 1e-5
RANK_MARGIN: Final[dict[str, float]] = {"aadb": 0.02, "ava": 0.15}
OMEGA_ATTRIBUTE: Final[float] = 0.1
OMEGA_RANK_BEST: Final[dict[str, float]] = {"aadb": 1.0, "ava": 0.1}
CONTENT_CLUSTERS: Final[int] = 10
ENSEMBLE_SIZE: Final[int] = 8
WIDE_FACTOR: Final[int] = 8
AVA_BINARY_THRESHOLD: Final[float] = 5.0

# --- Consistency (paper §3) -----------------------------------------------------------------
CONSISTENCY_FDR_Q: Final[float] = 0.05
CONSISTENCY_PERCENT_SIGNIFICANT: Final[float] = _printed("98.45")

# --- Reported results -----------------------------------------------------------------------
# Each written as the paper prints it (``_printed("0.6450")``): a float to compute with, and its
# digits for the tables that quote it beside ours (:func:`as_reported`).
#: Table 2: Spearman ρ on AADB test.
TABLE2_AADB_RHO: Final[dict[str, float]] = {
    "AlexNet FT Conf": _printed("0.5923"),
    "Reg": _printed("0.6239"),
    "Reg+Rank (cross-rater)": _printed("0.6308"),
    "Reg+Rank (within-rater)": _printed("0.6450"),
    "Reg+Rank (within- & cross-rater)": _printed("0.6515"),
    "Reg+Rank+Att": _printed("0.6656"),
    "Reg+Rank+Cont": _printed("0.6737"),
    "Reg+Rank+Att+Cont": _printed("0.6782"),
}

#: Table 3: AVA test ρ and binary accuracy (%); None where the paper gives no value.
TABLE3_AVA: Final[dict[str, tuple[float | None, float]]] = {
    "Murray et al.": (None, _printed("68.00")),
    "SPP": (None, _printed("72.85")),
    "AlexNet FT Conf": (_printed("0.4807"), _printed("71.52")),
    "DCNN": (None, _printed("73.25")),
    "RDCNN": (None, _printed("74.46")),
    "RDCNN semantic": (None, _printed("75.42")),
    "DMA": (None, _printed("74.46")),
    "DMA AlexNet FT": (None, _printed("75.41")),
    "Reg": (_printed("0.4995"), _printed("72.04")),
    "Reg+Rank": (_printed("0.5126"), _printed("71.50")),
    "Reg+Att": (_printed("0.5331"), _printed("75.32")),
    "Reg+Rank+Att": (_printed("0.5445"), _printed("75.48")),
    "Reg+Rank+Cont": (_printed("0.5412"), _printed("73.37")),
    "Reg+Rank+Att+Cont": (_printed("0.5581"), _printed("77.33")),
}
#: §5.3: ensemble of 8 Reg nets on AVA.
AVA_REG_ENSEMBLE8_RHO: Final[float] = _printed("0.5336")

#: Table 4: ρ vs ω_r.
TABLE4_OMEGA_RANK: Final[dict[str, dict[float, float]]] = {
    "aadb": {0.0: _printed("0.6382"), 0.1: _printed("0.6442"), 1.0: _printed("0.6515"), 2.0: _printed("0.6276")},
    "ava": {0.0: _printed("0.4995"), 0.1: _printed("0.5126"), 1.0: _printed("0.4988"), 2.0: _printed("0.4672")},
}

#: Table 5: Reg+Rank ρ on AADB vs number of sampled pairs, per sampling strategy.
TABLE5_PAIRS: Final[dict[str, dict[int, float]]] = {
    "cross": {2_000_000: _printed("0.6346"), 5_000_000: _printed("0.6286")},
    "within": {2_000_000: _printed("0.6450"), 5_000_000: _printed("0.6448")},
    "within_cross": {2_000_000: _printed("0.6487"), 5_000_000: _printed("0.6515")},
}

#: Table 6: human consistency: images-rated threshold → (n workers, mean ρ).
TABLE6_HUMAN: Final[dict[int, tuple[int, float]]] = {
    0: (190, _printed("0.6738")), 100: (65, _printed("0.7013")), 200: (42, _printed("0.7112")),
}
TABLE6_OUR_BEST_RHO: Final[float] = _printed("0.6782")

#: Table 7: cross-dataset ρ, (train, test) → ρ.
TABLE7_CROSS: Final[dict[tuple[str, str], float]] = {
    ("aadb", "aadb"): _printed("0.6782"),
    ("aadb", "ava"): _printed("0.1566"),
    ("ava", "aadb"): _printed("0.3191"),
    ("ava", "ava"): _printed("0.5154"),
}
