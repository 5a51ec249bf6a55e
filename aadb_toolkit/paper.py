"""Numbers from the AADB paper (Kong et al., ECCV 2016): its hyperparameters and its reported
results. They live here once; configs, the leaderboard's "reported" rows and the docs read them.
"""

from __future__ import annotations

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

#: Significant digits of a reported number as tables print it in full: the paper gives at most
#: five, and ten drop the binary noise of a scaled value (72.85 % → 0.7284999999999999 → 0.7285).
REPORTED_DIGITS: Final[int] = 10


def as_reported(value: float) -> str:
    """A number of the paper (or one scaled from it, such as a percentage as a fraction) as the paper
    gives it, e.g. ``0.7285`` and not ``0.7284999999999999``: the one rule for printing them in full."""
    return f"{float(value):.{REPORTED_DIGITS}g}"


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
CONSISTENCY_PERCENT_SIGNIFICANT: Final[float] = 98.45

# --- Reported results -----------------------------------------------------------------------
#: Table 2: Spearman ρ on AADB test.
TABLE2_AADB_RHO: Final[dict[str, float]] = {
    "AlexNet FT Conf": 0.5923,
    "Reg": 0.6239,
    "Reg+Rank (cross-rater)": 0.6308,
    "Reg+Rank (within-rater)": 0.6450,
    "Reg+Rank (within- & cross-rater)": 0.6515,
    "Reg+Rank+Att": 0.6656,
    "Reg+Rank+Cont": 0.6737,
    "Reg+Rank+Att+Cont": 0.6782,
}

#: Table 3: AVA test ρ and binary accuracy (%); None where the paper gives no value.
TABLE3_AVA: Final[dict[str, tuple[float | None, float]]] = {
    "Murray et al.": (None, 68.00),
    "SPP": (None, 72.85),
    "AlexNet FT Conf": (0.4807, 71.52),
    "DCNN": (None, 73.25),
    "RDCNN": (None, 74.46),
    "RDCNN semantic": (None, 75.42),
    "DMA": (None, 74.46),
    "DMA AlexNet FT": (None, 75.41),
    "Reg": (0.4995, 72.04),
    "Reg+Rank": (0.5126, 71.50),
    "Reg+Att": (0.5331, 75.32),
    "Reg+Rank+Att": (0.5445, 75.48),
    "Reg+Rank+Cont": (0.5412, 73.37),
    "Reg+Rank+Att+Cont": (0.5581, 77.33),
}
#: §5.3: ensemble of 8 Reg nets on AVA.
AVA_REG_ENSEMBLE8_RHO: Final[float] = 0.5336

#: Table 4: ρ vs ω_r.
TABLE4_OMEGA_RANK: Final[dict[str, dict[float, float]]] = {
    "aadb": {0.0: 0.6382, 0.1: 0.6442, 1.0: 0.6515, 2.0: 0.6276},
    "ava": {0.0: 0.4995, 0.1: 0.5126, 1.0: 0.4988, 2.0: 0.4672},
}

#: Table 5: Reg+Rank ρ on AADB vs number of sampled pairs, per sampling strategy.
TABLE5_PAIRS: Final[dict[str, dict[int, float]]] = {
    "cross": {2_000_000: 0.6346, 5_000_000: 0.6286},
    "within": {2_000_000: 0.6450, 5_000_000: 0.6448},
    "within_cross": {2_000_000: 0.6487, 5_000_000: 0.6515},
}

#: Table 6: human consistency: images-rated threshold → (n workers, mean ρ).
TABLE6_HUMAN: Final[dict[int, tuple[int, float]]] = {0: (190, 0.6738), 100: (65, 0.7013), 200: (42, 0.7112)}
TABLE6_OUR_BEST_RHO: Final[float] = 0.6782

#: Table 7: cross-dataset ρ, (train, test) → ρ.
TABLE7_CROSS: Final[dict[tuple[str, str], float]] = {
    ("aadb", "aadb"): 0.6782,
    ("aadb", "ava"): 0.1566,
    ("ava", "aadb"): 0.3191,
    ("ava", "ava"): 0.5154,
}
