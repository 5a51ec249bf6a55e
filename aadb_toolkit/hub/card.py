"""The dataset card (README.md) of a published AADB: its YAML metadata (configs, features, splits,
license, gating) and its body, and a local check of the card against the rules the Hub applies."""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import paper, schema
from .._markdown import escape
from ..errors import InputError
from . import layout

PRETTY_NAME = "AADB: Aesthetics and Attributes Database (with rater identities)"
SYNTHETIC_PRETTY_NAME = "Synthetic AADB (a test instrument, not AADB)"
SYNTHETIC_WARNING = ("> **This is not AADB.** It is a synthetic data set in AADB's format, drawn by "
                     "`aadb simulate` (procedural photos, simulated raters) to test the toolkit. Its numbers "
                     "say nothing about real photos or real raters.\n")
SYNTHETIC_TAG = "synthetic"
AADB_INTRO = ("AADB (the Aesthetics and Attributes Database) is a set of {n_images} photographs, each rated by\n"
              "several Amazon Mechanical Turk workers for overall aesthetic quality and for 11 photographic\n"
              "attributes, introduced by Kong et al. (ECCV 2016).")
SYNTHETIC_INTRO = ("This synthetic set of {n_images} procedural images imitates AADB (the Aesthetics and Attributes\n"
                   "Database of Kong et al., ECCV 2016) in format and design: simulated raters score each image\n"
                   "for overall aesthetic quality and 11 photographic attributes.")
AADB_LIMITATIONS = (
    "- Scores are crowd judgements of a few workers per image (about {raters_per_batch}), so per-image\n"
    "  means are noisy; use the individual ratings when that matters.\n"
    "- Workers differ strongly in how many images they rated (a long tail), and the test split holds\n"
    "  few ratings per worker.\n"
    "- Attribute votes are coarse (−1/0/+1) and sparse for some attributes.\n"
    "- Photos come from Flickr and reflect its users' subjects and tastes; no demographic\n"
    "  information about raters is available.")
SYNTHETIC_LIMITATIONS = (
    "- The images are procedural pictures drawn by `aadb simulate`, not photographs, and the\n"
    "  ratings come from simulated raters (about {raters_per_batch} per image), not from people: no\n"
    "  finding on this data says anything about real photos or real raters.\n"
    "- Workers, batches, quirks and label files imitate AADB's design and known problems, as\n"
    "  documented with the generator; the planted truth lies beside the simulated release.")
#: Who made the annotations, in the Hub's `annotations_creators` vocabulary.
ANNOTATIONS_CREATORS = {False: "crowdsourced", True: "machine-generated"}
#: Card metadata key naming the label list that defined the test split (e.g. "TestNew").
TEST_LIST_KEY = "aadb_test_list"
#: Stands for the repository id in the card's loading example when none is given.
REPO_PLACEHOLDER = "ORG/NAME"
LICENSE_NAME = "aadb-research-only"
#: What the Hub shows to someone requesting access when the dataset is published gated.
GATED_PROMPT = ("AADB is released for non-commercial research use only, and its photos carry their "
                "own Flickr Creative Commons licenses. Rater ids are anonymized; do not try to "
                "re-identify raters. To access the data, agree to use it for research only and to "
                "cite Kong et al., ECCV 2016.")
GATED_FIELDS = {"Name": "text", "Affiliation": "text",
                "I will use AADB for non-commercial research only and cite the paper": "checkbox"}
#: Field types the Hub accepts in `extra_gated_fields` (besides a `select` with options).
HUB_GATED_FIELD_TYPES = frozenset({"text", "checkbox", "date_picker", "country", "ip_location"})
_LICENSE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@dataclass(frozen=True)
class CardFacts:
    """Everything the card states, gathered by the writer."""

    image_features: pa.Schema
    rating_features: pa.Schema
    splits: dict[str, dict[str, dict[str, int]]]
    n_raters: int
    n_batches: int
    n_images: int
    n_ratings: int
    n_known_license: int
    n_known_url: int
    gated: bool
    consistency_summary: dict | None
    notes: tuple[str, ...]
    synthetic: bool = False
    repo_hint: str = "ORG/NAME"
    #: Configs beyond the two above (e.g. ``piaa``): name → arrow schema; their splits are in ``splits``.
    extra_features: dict[str, pa.Schema] = field(default_factory=dict)
    test_list: str | None = None


def _features(table_schema: pa.Schema):
    from datasets import Features

    return Features.from_arrow_schema(table_schema)


def card_metadata(facts: CardFacts, folder: Path) -> dict[str, Any]:
    """The YAML front matter of the card, built with the `datasets` helpers that `push_to_hub` uses."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    data = DatasetCardData(
        pretty_name=SYNTHETIC_PRETTY_NAME if facts.synthetic else PRETTY_NAME,
        license="other",
        license_name=LICENSE_NAME,
        license_link=layout.LICENSE,
        annotations_creators=[ANNOTATIONS_CREATORS[facts.synthetic]],
        source_datasets=["original"],
        task_categories=["image-classification", "tabular-regression"],
        size_categories=[layout.size_category(facts.n_images)],
        tags=["aesthetics", "image-aesthetics", "photo-quality", *([] if facts.synthetic else ["crowdsourcing"]),
              "rater-ids", "aadb"] + ([SYNTHETIC_TAG] if facts.synthetic else []),
    )
    if facts.test_list:  # read back into the loaded data's provenance
        data[TEST_LIST_KEY] = facts.test_list
    if facts.gated:
        data["extra_gated_prompt"] = GATED_PROMPT
        data["extra_gated_fields"] = dict(GATED_FIELDS)
        data["extra_gated_button_content"] = "Agree and request access"
    configs, infos = {}, {}
    for config, table_schema in ((layout.CONFIG_IMAGES, facts.image_features),
                                 (layout.CONFIG_RATINGS, facts.rating_features), *facts.extra_features.items()):
        splits = facts.splits[config]
        configs[config] = {"data_files": [{"split": s, "path": layout.split_pattern(config, s)} for s in splits]}
        download = sum(p.stat().st_size for p in (folder / layout.CONFIG_DIRS[config]).glob("*.parquet"))
        infos[config] = DatasetInfo(
            features=_features(table_schema),
            splits=SplitDict({s: SplitInfo(name=s, num_bytes=v["num_bytes"], num_examples=v["num_examples"])
                              for s, v in splits.items()}),
            download_size=download,
            dataset_size=sum(v["num_bytes"] for v in splits.values()),
        )
    DatasetInfosDict(infos).to_dataset_card_data(data)
    MetadataConfigs(configs).to_dataset_card_data(data)
    return data.to_dict()


def render_card(facts: CardFacts, folder: Path) -> str:
    """The full README.md text: YAML front matter and the Markdown body."""
    import yaml

    meta = card_metadata(facts, folder)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    body = string.Template(_template("card_template.md")).substitute(_body_fields(facts))
    return f"---\n{front}---\n\n{body}"


def render_license() -> str:
    """The text of LICENSE.md (the terms the card's `license_link` points to)."""
    return _template("license_template.md")


def _template(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _body_fields(facts: CardFacts) -> dict[str, str]:
    rows = []
    for split in facts.splits[layout.CONFIG_IMAGES]:
        rows.append(f"| {split} | {facts.splits[layout.CONFIG_IMAGES][split]['num_examples']:,} "
                    f"| {facts.splits[layout.CONFIG_RATINGS].get(split, {}).get('num_examples', 0):,} |")
    notes = "".join(f"- {escape(n)}\n" for n in facts.notes)  # notes quote input text: keep it inert
    return {
        "pretty_name": SYNTHETIC_PRETTY_NAME if facts.synthetic else PRETTY_NAME,
        "synthetic_warning": SYNTHETIC_WARNING if facts.synthetic else "",
        "intro": (SYNTHETIC_INTRO if facts.synthetic else AADB_INTRO).format(n_images=f"{facts.n_images:,}"),
        "n_images": f"{facts.n_images:,}", "n_ratings": f"{facts.n_ratings:,}",
        "n_raters": f"{facts.n_raters:,}", "n_batches": f"{facts.n_batches:,}",
        "n_known_license": f"{facts.n_known_license:,}", "n_known_url": f"{facts.n_known_url:,}",
        "repo_hint": facts.repo_hint,
        "limitations": (SYNTHETIC_LIMITATIONS if facts.synthetic else AADB_LIMITATIONS).format(
            raters_per_batch=schema.RATERS_PER_BATCH),
        "source_url_meaning": (("made-up URLs and licenses in the release's format, where the simulated release has them; "
                                "they point to no real photo") if facts.synthetic
                               else "the Flickr URL and the photo's license, where known"),
        "images_per_batch": str(schema.IMAGES_PER_BATCH), "raters_per_batch": str(schema.RATERS_PER_BATCH),
        "score_min": str(schema.SCORE_MIN), "score_max": str(schema.SCORE_MAX),
        "attribute_list": "\n".join(f"- `{a}` (release label file name: `{schema.LABEL_FILE_ATTRIBUTE_NAMES[a]}`)"
                                    for a in schema.ATTRIBUTES),
        "split_rows": "\n".join(rows),
        "test_list_note": _test_list_text(facts.test_list, facts.splits[layout.CONFIG_IMAGES].get("test", {})
                                          .get("num_examples", 0)),
        "consistency": _consistency_text(facts.consistency_summary),
        "license_terms": _template("license_template.md").split("\n", 2)[2].strip(),
        "notes": notes,
        "citation": paper.CITATION,
    }


def _test_list_text(test_list: str | None, n_test: int) -> str:
    """The card's sentence on which of the release's two test lists defined ``test`` (``n_test``
    images: the paper's list has 1,000 in AADB, a smaller or synthetic release fewer)."""
    if test_list is None:
        return ""
    files = f"`imgList{test_list}Regression_*`"
    if test_list == schema.DEFAULT_TEST_LIST:
        return (f"\nThe test split is the release's {files} list, the paper's test set (1,000 in AADB; "
                f"{n_test:,} images here), not the older `imgListTestRegression_*` list.\n")
    return (f"\nThe test split is the release's **older** {files} list, not the paper's "
            "`imgListTestNewRegression_*` test set: numbers on it are not comparable with the paper's.\n")


def _consistency_text(summary: dict | None) -> str:
    """The card's consistency section from an `aadb consistency` summary (or a pointer to it)."""
    if not summary:
        return ("No consistency analysis was attached to this release. Run `aadb consistency` on this "
                "dataset to test, batch by batch, whether raters agree more than chance.")
    known = {
        "method": "method", "method_description": "what is tested", "unit": "unit of a test",
        "n_batches": "batches", "n_tested": "batches tested", "n_tests": "tests",
        "n_significant": "significant tests", "percent_significant": "percentage significant",
        "percent_significant_of_tested": "percentage significant of those tested",
        "q": "false discovery rate q (Benjamini–Hochberg)", "n_perm": "permutations per test",
        "mean_batch_rho": "mean batch Spearman ρ", "median_batch_rho": "median batch Spearman ρ",
        "n_pairs": "rater pairs", "n_pairs_valid": "rater pairs with a defined ρ", "seed": "seed",
        "toolkit_version": "aadb_toolkit version",
    }
    lines = ["Rater agreement within batches (HITs), from `aadb consistency` (by default: for each batch "
             "the mean pairwise Spearman correlation of its raters, a permutation p-value, and "
             "Benjamini–Hochberg across batches; the method row says which test was run).", "",
             "| quantity | value |", "|---|---|"]
    for key, label in known.items():
        value = summary.get(key)
        if isinstance(value, (str, int, float, bool)):
            lines.append(f"| {label} | {_fmt(value)} |")
    lines += ["", f"The paper reports {paper.CONSISTENCY_PERCENT_SIGNIFICANT}% of AADB batches with significant agreement."]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(value)  # the summary is a user-supplied file: its text must not inject markup


# --- reading and validating -----------------------------------------------------------------

def is_synthetic_card(meta: dict[str, Any]) -> bool:
    """True when a card's metadata carries the ``synthetic`` tag (a simulated data set, not AADB)."""
    return SYNTHETIC_TAG in (meta.get("tags") or [])


def read_metadata(readme: Path) -> dict[str, Any]:
    """The YAML front matter of a dataset card, parsed as the Hub does (duplicate keys rejected)."""
    import yaml
    from datasets.utils.metadata import _NoDuplicateSafeLoader, _split_yaml_from_readme

    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the dataset card: {exc}", file=str(readme)) from exc
    block, _ = _split_yaml_from_readme(text)
    if block is None:
        raise InputError("no YAML front matter (--- ... ---) at the top", file=str(readme))
    try:
        meta = yaml.load(block, Loader=_NoDuplicateSafeLoader)
    except (yaml.YAMLError, TypeError) as exc:
        raise InputError(f"invalid YAML front matter: {exc}", file=str(readme)) from exc
    if not isinstance(meta, dict):
        raise InputError("YAML front matter is not a mapping", file=str(readme))
    return meta


def validate_card(folder: Path) -> None:
    """Check a published folder's card as the Hub and `datasets` would, offline: the YAML parses
    (huggingface_hub ``DatasetCard``), configs and ``dataset_info`` parse (`datasets`), the license,
    size, creators, task and gating fields use the Hub's vocabularies, every ``data_files`` pattern
    matches shards, and the declared features and row counts equal those of the parquet files."""
    from datasets import Features, SplitDict
    from datasets.utils.metadata import MetadataConfigs, known_task_ids
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    readme = folder / layout.README
    meta = read_metadata(readme)
    where = str(readme)
    try:
        card = DatasetCard(readme.read_text(encoding="utf-8"))
        configs = MetadataConfigs.from_dataset_card_data(card.data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"dataset card does not parse: {exc}", file=where) from exc
    _check_vocabularies(meta, folder, where, set(known_task_ids))
    infos = meta.get("dataset_info")
    infos = [infos] if isinstance(infos, dict) else infos
    if not isinstance(infos, list):
        raise InputError("dataset_info is missing or not a list", file=where, field="dataset_info")
    infos_by_config = {i.get("config_name", "default"): i for i in infos}
    if set(infos_by_config) != set(configs):
        raise InputError(f"dataset_info configs {sorted(infos_by_config)} differ from configs {sorted(configs)}",
                         file=where, field="dataset_info")
    for name, config in configs.items():
        info = infos_by_config[name]
        try:
            features = Features._from_yaml_list(info["features"])
            splits = SplitDict._from_yaml_list(info["splits"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"dataset_info of config {name!r} does not parse: {exc}", file=where,
                             field="dataset_info") from exc
        for entry in config.get("data_files", []):
            split = entry["split"]
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
            if not files:
                raise InputError(f"config {name!r} split {split!r}: pattern(s) {patterns} match no file",
                                 file=where, field="configs")
            rows = 0
            for f in files:
                pf = pq.ParquetFile(f)
                rows += pf.metadata.num_rows
                stored = Features.from_arrow_schema(pf.schema_arrow)
                if stored != features:
                    raise InputError(f"features of {f.name} differ from the card's dataset_info of config {name!r}",
                                     file=where, field="dataset_info")
            if split not in splits or splits[split].num_examples != rows:
                declared = splits[split].num_examples if split in splits else None
                raise InputError(f"config {name!r} split {split!r}: card declares {declared} rows, "
                                 f"the shards hold {rows}", file=where, field="dataset_info")


def _check_vocabularies(meta: dict[str, Any], folder: Path, where: str, task_ids: set[str]) -> None:
    """License, size category, creators, tasks and gating fields against the Hub's vocabularies
    (the lists shipped with `datasets` in ``datasets/utils/resources``)."""
    sizes = set(_resource_json("size_categories.json"))
    creators = _resource_json("creators.json")
    if not meta.get("pretty_name"):
        raise InputError("pretty_name is missing", file=where, field="pretty_name")
    if meta.get("license") != "other":
        raise InputError(f"license is {meta.get('license')!r}; AADB's terms are custom, expected 'other'",
                         file=where, field="license")
    if not _LICENSE_NAME_RE.match(str(meta.get("license_name", ""))):
        raise InputError("license 'other' needs a license_name of lowercase letters, digits, '-' or '.'",
                         file=where, field="license_name")
    link = str(meta.get("license_link", ""))
    if not (link.startswith("https://") or (folder / link).is_file()):
        raise InputError(f"license_link {link!r} is neither a URL nor a file of the repository",
                         file=where, field="license_link")
    checks = (("size_categories", sizes), ("annotations_creators", set(creators["annotations"])),
              ("language_creators", set(creators["language"])), ("task_categories", task_ids))
    for key, allowed in checks:
        values = meta.get(key) or []
        values = [values] if isinstance(values, str) else values
        bad = [v for v in values if v not in allowed]
        if bad:
            raise InputError(f"{bad} not among the Hub's values {sorted(allowed)}", file=where, field=key)
    gated_keys = [k for k in meta if k.startswith("extra_gated_")]
    if gated_keys and not meta.get("extra_gated_prompt"):
        raise InputError("gating fields without extra_gated_prompt", file=where, field="extra_gated_prompt")
    for name, kind in (meta.get("extra_gated_fields") or {}).items():
        ok = kind in HUB_GATED_FIELD_TYPES or (isinstance(kind, dict) and kind.get("type") == "select"
                                               and isinstance(kind.get("options"), list))
        if not ok:
            raise InputError(f"gated field {name!r} has type {kind!r}", file=where, field="extra_gated_fields")


def _resource_json(name: str) -> Any:
    return json.loads(resources.files("datasets.utils.resources").joinpath(name).read_text(encoding="utf-8"))
