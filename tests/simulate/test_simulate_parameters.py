"""The generator's parameters are checked against their documented domains (docs/synthetic.md,
"Parameter domains"): a bad model file or ``--set`` value is a clear :class:`InputError` naming
the dotted key and the allowed range, never NaN scores or an internal error; every shipped
setting is still accepted and still draws exactly the bytes it drew before the checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from aadb_toolkit.cli import main
from aadb_toolkit.errors import InputError
from aadb_toolkit.schema import ATTRIBUTES
from aadb_toolkit.simulate import load_setting, simulate


def _model_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_all_zero_attribute_weights_are_refused_naming_the_content_type(tmp_path):
    """D1: a content type whose weights were all 0 was normalised to NaN, and the release's
    scores were written as -9223372036854775808 with exit code 0."""
    zero = ", ".join(f"{a} = 0" for a in ATTRIBUTES)
    path = _model_file(tmp_path, f"[content_types.landscape]\nweights = {{ {zero} }}\n")
    with pytest.raises(InputError, match=r"content_types\.landscape\.weights.*all be zero"):
        load_setting(path)
    with pytest.raises(InputError, match=r"content_types\.urban\.weights.*all be zero"):
        load_setting(None, {f"content_types.urban.weights.{a}": 0.0 for a in ATTRIBUTES})


def test_an_interaction_strength_that_leaves_no_usable_weights_is_refused():
    """D1: λ = 1e308 is in its domain, but mixing overflows and renormalising gave all-zero weights."""
    with pytest.raises(InputError, match="images.interaction = 1e[+]308 leaves content type 'landscape' no usable"):
        load_setting(None, {"images.interaction": 1e308})


def test_scores_that_overflow_are_refused_before_the_integer_cast(tmp_path):
    """D1 backstop: parameters in their domains can still be too large to compute with (a gain of
    1e308 overflows to infinity); the non-finite scores are refused, not cast to integers."""
    with pytest.raises(InputError, match="not finite"):
        simulate(tmp_path / "r", n_images=200, seed=1, image_size=(32, 24), overrides={"raters.gain": 1e308})
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("key, value, allowed", [
    ("raters.taste_sd", float("nan"), ">= 0"),
    ("raters.taste_sd", float("inf"), ">= 0"),
    ("images.interaction", float("nan"), ">= 0"),
    ("content_types.landscape.weights.light", float("nan"), "finite"),
    ("content_types.landscape.offset", float("-inf"), "finite"),
    ("content_types.landscape.share", float("nan"), "from 0 to 1"),
    ("raters.bias_sd", -1.0, ">= 0"),
    ("images.spread", -1.0, ">= 0"),
    ("raters.noise_light", -0.5, ">= 0"),
    ("raters.attribute_informativeness", 2.0, "from 0 to 1"),
    ("raters.careless_share", -0.1, "from 0 to 1"),
    ("raters.workers_per_1000_images", 1e300, "from 0 to 500"),
    ("images.jpeg_quality", 0, "from 1 to 95"),
    ("images.jpeg_quality", 100, "from 1 to 95"),
    ("raters.heavy_at_hits", 1, ">= 2"),
    ("raters.careless_max_hits", -1, ">= 0"),
    ("quirks.rejected_per_hit", 1.5, "from 0 to 1"),
])
def test_parameters_outside_their_domain_are_refused_naming_key_and_range(key, value, allowed):
    """D2: NaN, infinite and negative parameters ended in numpy errors (exit 70) or were drawn."""
    with pytest.raises(InputError, match=rf"--set: {key} must be .*{allowed}") as err:
        load_setting(None, {key: value})
    assert err.value.field == key


def test_content_shares_must_be_non_negative_and_sum_to_one():
    with pytest.raises(InputError, match=r"content_types\.landscape\.share.*from 0 to 1"):
        load_setting(None, {"content_types.landscape.share": -0.05, "content_types.urban.share": 0.25})
    zero = {f"content_types.{c}.share": 0.0 for c in ("landscape", "portrait", "macro", "urban", "still_life")}
    with pytest.raises(InputError, match="shares sum to 0"):
        load_setting(None, zero)


def test_workload_quantiles_must_be_in_order():
    with pytest.raises(InputError, match=r"workload\.two_batches_from.*workload\.one_batch_from"):
        load_setting(None, {"workload.two_batches_from": 0.7})


def test_cli_refuses_a_nan_override_and_a_non_utf8_model_file_with_a_one_line_error(tmp_path, capsys):
    """D2: both ended in the CLI's internal error (exit 70)."""
    out = ["simulate", "--out", str(tmp_path / "r"), "--images", "20", "--no-progress"]
    assert main([*out, "--set", "raters.taste_sd=nan"]) == 1
    assert "raters.taste_sd" in capsys.readouterr().err
    bad = tmp_path / "utf16.toml"
    bad.write_bytes("[raters]\ntaste_sd = 0.5\n".encode("utf-16"))
    assert main([*out, "--model", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "utf16.toml" in err and "UTF-8" in err and "internal error" not in err
    assert not (tmp_path / "r").exists()


def test_an_integer_parameter_refuses_a_fraction_and_a_boolean():
    """D3: images.jpeg_quality = 1.5 was recorded as 1.5 but encoded with int(1.5) = 1."""
    with pytest.raises(InputError, match="images.jpeg_quality must be an int, got 1.5"):
        load_setting(None, {"images.jpeg_quality": 1.5})
    with pytest.raises(InputError, match="raters.heavy_at_hits must be an int, got True"):
        load_setting(None, {"raters.heavy_at_hits": True})
    assert load_setting(None, {"images.jpeg_quality": 80}).images["jpeg_quality"] == 80
    assert load_setting(None, {"raters.taste_sd": 1}).raters["taste_sd"] == 1.0  # an int where a float is due


def test_an_edited_model_file_is_read_again(tmp_path):
    """D5: settings were cached by name, so a model file edited within one process kept its old values."""
    path = _model_file(tmp_path, "[raters]\ntaste_sd = 0.5\n")
    assert load_setting(str(path)).raters["taste_sd"] == 0.5
    path.write_text("[raters]\ntaste_sd = 0.9\n", encoding="utf-8")
    assert load_setting(str(path)).raters["taste_sd"] == 0.9
