"""Numbers as people read them: counts as integers, tiny p-values as ``< 0.001``, the paper's
numbers as the paper gives them."""

from aadb_toolkit import paper
from aadb_toolkit._format import format_metric, format_p


def test_counts_print_as_integers_and_other_metrics_with_fixed_decimals():
    assert format_metric("n_raters_k10", 10.0) == "10"
    assert format_metric("rho_k10", 10.0) == "10.0000"
    assert format_metric("spearman", 0.123456) == "0.1235"
    assert format_metric("spearman", None) == "n/a"
    assert format_metric("spearman", 0.1, None) == "0.1"


def test_tiny_p_values_have_a_floor():
    assert format_p(3e-9) == "< 0.001" and format_p(0.0) == "< 0.001"
    assert format_p(0.001) == "0.001" and format_p(0.0123) == "0.0123"


def test_the_papers_numbers_print_as_the_paper_gives_them():
    assert 72.85 / 100 != 0.7285 and paper.as_reported(72.85 / 100) == "0.7285"
    assert paper.as_reported(paper.CONSISTENCY_PERCENT_SIGNIFICANT) == "98.45"
    assert all(float(paper.as_reported(v)) == v for v in paper.TABLE2_AADB_RHO.values())
