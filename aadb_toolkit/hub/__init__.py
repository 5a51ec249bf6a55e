"""Publish AADB as a Hugging Face dataset (parquet shards with embedded images and rater ids, a
validated dataset card), push it to the Hub, and read a published folder or Hub repo back as the
canonical tables. ``aadb_toolkit.sources.load`` dispatches here for published folders and repo ids;
this package imports nothing above the data model (:mod:`aadb_toolkit.data`)."""

from __future__ import annotations

from .card import validate_card
from .reader import ParquetImageReader, is_published_folder, load_from_hub, load_published
from .upload import PushPlan, PushResult, plan_push, push
from .writer import ExtraConfig, PublishResult, canonical_tables, publish


def piaa_config(table, note: str) -> ExtraConfig:
    """The ``piaa`` config every publish adds: the personalized protocol's episodes ``table`` (see
    :func:`aadb_toolkit.piaa.episodes.published_table`) with the card's ``note``."""
    from . import layout

    return ExtraConfig(name=layout.CONFIG_PIAA, split=layout.PIAA_SPLIT, table=table, note=note)

__all__ = [
    "ExtraConfig",
    "piaa_config",
    "ParquetImageReader",
    "PublishResult",
    "PushPlan",
    "PushResult",
    "canonical_tables",
    "is_published_folder",
    "load_from_hub",
    "load_published",
    "plan_push",
    "publish",
    "push",
    "validate_card",
]
