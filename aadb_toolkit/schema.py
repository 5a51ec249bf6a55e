"""The facts of AADB that every stage shares: attribute names, score scale, splits, file names,
and the columns of the canonical tables.

Everything else in the toolkit imports these names; nothing restates them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The 11 attributes, in the toolkit's canonical (snake_case) spelling and the paper's order of
#: the official label files (alphabetical by official spelling).
ATTRIBUTES: Final[tuple[str, ...]] = (
    "balancing_elements",
    "color_harmony",
    "content",
    "depth_of_field",
    "light",
    "motion_blur",
    "object",
    "repetition",
    "rule_of_thirds",
    "symmetry",
    "vivid_color",
)

#: Official spellings used in the label file names of the release (the typo is the release's).
LABEL_FILE_ATTRIBUTE_NAMES: Final[dict[str, str]] = {
    "balancing_elements": "BalacingElements",
    "color_harmony": "ColorHarmony",
    "content": "Content",
    "depth_of_field": "DoF",
    "light": "Light",
    "motion_blur": "MotionBlur",
    "object": "Object",
    "repetition": "Repetition",
    "rule_of_thirds": "RuleOfThirds",
    "symmetry": "Symmetry",
    "vivid_color": "VividColor",
}

#: Default stems of the attribute answer columns in the AMT batch results
#: (`Answer.<stem><i>` for image slot i = 1..10). Configurable at curation time.
AMT_ATTRIBUTE_ANSWER_STEMS: Final[dict[str, str]] = {
    "balancing_elements": "balancingElements",
    "color_harmony": "colorHarmony",
    "content": "content",
    "depth_of_field": "depthOfField",
    "light": "light",
    "motion_blur": "motionBlur",
    "object": "object",
    "repetition": "repetition",
    "rule_of_thirds": "ruleOfThirds",
    "symmetry": "symmetry",
    "vivid_color": "vividColor",
}

#: Allowed attribute votes (-1 / 0 / +1) and the range of their per-image means.
ATTRIBUTE_VOTES: Final[tuple[int, ...]] = (-1, 0, 1)

#: The overall aesthetic score scale of the AMT task (integers 1..5).
SCORE_MIN: Final[int] = 1
SCORE_MAX: Final[int] = 5


def rescale_score(score_mean):
    """Map a mean score on the 1–5 scale to [0, 1] as (mean − 1) / 4 (the label files' scale)."""
    return (score_mean - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)


#: Canonical split names, and the spellings in the release's label file names.
SPLITS: Final[tuple[str, ...]] = ("train", "validation", "test")
LABEL_FILE_SPLIT_NAMES: Final[dict[str, str]] = {
    "train": "Train",
    "validation": "Validation",
    "test": "TestNew",
}
#: The release's two test label lists, by the name their files carry (``imgList<name>Regression_*``):
#: ``TestNew``, the paper's 1,000-image test set (the default), and the older ``Test`` list that
#: some published methods report on. The curated manifest records the one that defined ``test``.
TEST_LISTS: Final[tuple[str, ...]] = ("TestNew", "Test")
DEFAULT_TEST_LIST: Final[str] = "TestNew"

#: The paper's split sizes (of 10,000 images), used for deterministic batch-level splits.
PAPER_SPLIT_SIZES: Final[dict[str, int]] = {"train": 8500, "validation": 500, "test": 1000}
PAPER_N_IMAGES: Final[int] = 10_000

#: The AMT design: a HIT (batch) shows 10 images and is completed by 5 distinct workers.
IMAGES_PER_BATCH: Final[int] = 10
RATERS_PER_BATCH: Final[int] = 5

#: Layout of the release (docs/curation.md, "Input: the release").
RELEASE_IMAGE_DIR: Final[str] = "datasetImages_originalSize"
RELEASE_LABEL_DIR: Final[str] = "imgListFiles_label"
RELEASE_RAW_RESULTS: Final[str] = "AADB_AllinAll.csv"
SCORE_LABEL_FIELD: Final[str] = "score"


def label_file_name(split: str, field: str, test_list: str = DEFAULT_TEST_LIST) -> str:
    """Official label file name for a split and a field (``"score"`` or an attribute name);
    ``test_list`` names the list of the test split (one of :data:`TEST_LISTS`)."""
    if split not in LABEL_FILE_SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if test_list not in TEST_LISTS:
        raise ValueError(f"unknown test list {test_list!r}; expected one of {TEST_LISTS}")
    if field == SCORE_LABEL_FIELD:
        stem = "score"
    elif field in LABEL_FILE_ATTRIBUTE_NAMES:
        stem = LABEL_FILE_ATTRIBUTE_NAMES[field]
    else:
        raise ValueError(f"unknown label field {field!r}; expected 'score' or one of {ATTRIBUTES}")
    name = test_list if split == "test" else LABEL_FILE_SPLIT_NAMES[split]
    return f"imgList{name}Regression_{stem}.txt"


# --- Canonical tables (docs/curation.md, "Output: the curated folder") ---------------------
#: `images` table: one row per usable image. Attribute columns hold the mean vote in [-1, 1].
#: ``path`` is the image file relative to the release root; ``flags`` is a ';'-joined list of
#: non-fatal findings (e.g. ``grayscale``, ``png_bytes``, ``exif_rotated``), empty when none.
IMAGE_COLUMNS: Final[tuple[str, ...]] = (
    "image_id",
    "split",
    "score_mean",
    "score",
    "n_ratings",
    *ATTRIBUTES,
    "width",
    "height",
    "exif_orientation",
    "source_url",
    "license",
    "path",
    "flags",
)

#: A curated folder's ``images.parquet`` adds one column to the canonical ones: the sha256 of each
#: image file's bytes (``sha256:<hex>``), taken when curation decoded them. Loading a curated folder
#: checks every image read against it, so ``release_root`` and ``path`` cannot point elsewhere
#: (docs/safety.md, "How published images are checked"). It is not published.
IMAGE_SHA256: Final[str] = "sha256"
CURATED_IMAGE_COLUMNS: Final[tuple[str, ...]] = (*IMAGE_COLUMNS, IMAGE_SHA256)

#: `ratings` table (long format): one row per usable rating. Attribute columns hold the vote.
RATING_COLUMNS: Final[tuple[str, ...]] = (
    "image_id",
    "rater_id",
    "batch_id",
    "score",
    *ATTRIBUTES,
    "submit_time",
)

#: Files of a curated folder.
CURATED_IMAGES: Final[str] = "images.parquet"
CURATED_RATINGS: Final[str] = "ratings.parquet"
CURATED_MANIFEST: Final[str] = "manifest.json"
CURATED_FORMAT: Final[str] = "aadb-curated"
CURATED_FORMAT_VERSION: Final[int] = 1

#: A simulated release's planted truth lies beside it in ``<release><SIMULATED_TRUTH_SUFFIX>``: the
#: mark by which loaders know data drawn by ``aadb simulate`` (synthetic, not AADB).
SIMULATED_TRUTH_SUFFIX: Final[str] = ".truth"
#: The file of a simulated release's truth that names the generator's setting (name, overrides,
#: every parameter and their sha256): curation copies its name, overrides and digest into the manifest.
SIMULATED_SETTING_FILE: Final[str] = "setting.json"
#: The output-marker kind of a release folder ``aadb simulate`` wrote (a real release has no marker).
SIMULATED_RELEASE_KIND: Final[str] = "simulated_release"


def simulated_truth_dir(release: str | Path) -> Path:
    """The planted-truth folder of a simulated release: its sibling named ``<release>.truth``."""
    release = Path(release)
    return release.with_name(release.name + SIMULATED_TRUTH_SUFFIX)
