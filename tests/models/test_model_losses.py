"""Losses against hand-computed values (paper §4.1–4.2, Eq. 1–2)."""

import pytest
import torch

from aadb_toolkit.models.losses import Batch, rank_delta, rank_loss, regression_loss, total_loss


def test_regression_loss_is_half_mean_squared_error():
    pred = torch.tensor([0.5, 0.2, 0.9])
    y = torch.tensor([0.25, 0.2, 0.5])
    # (0.25² + 0 + 0.4²) / (2·3) = (0.0625 + 0.16) / 6
    assert regression_loss(pred, y).item() == pytest.approx(0.2225 / 6)


def test_rank_delta_follows_ground_truth_order_ties_count_as_ge():
    assert rank_delta(torch.tensor([0.5, 0.2, 0.3]), torch.tensor([0.2, 0.5, 0.3])).tolist() == [1.0, -1.0, 1.0]


def test_rank_loss_eq1_by_hand():
    # pairs: (ŷi, ŷj, δ) with α = 0.02
    pi = torch.tensor([0.60, 0.40, 0.50, 0.30])
    pj = torch.tensor([0.50, 0.45, 0.49, 0.10])
    delta = torch.tensor([1.0, 1.0, 1.0, -1.0])
    # max(0, .02-.10)=0; max(0, .02+.05)=.07; max(0, .02-.01)=.01; max(0, .02+.20)=.22
    expected = (0 + 0.07 + 0.01 + 0.22) / (2 * 4)
    assert rank_loss(pi, pj, delta, 0.02).item() == pytest.approx(expected, abs=1e-7)


def test_rank_loss_is_zero_beyond_the_margin_and_linear_inside():
    pi, pj = torch.tensor([0.7]), torch.tensor([0.2])
    assert rank_loss(pi, pj, torch.tensor([1.0]), 0.15).item() == 0.0
    assert rank_loss(pi, pj, torch.tensor([-1.0]), 0.15).item() == pytest.approx((0.15 + 0.5) / 2)


def test_total_loss_is_eq2_weighted_sum_and_gradients_flow_through_both_siamese_branches():
    score = torch.tensor([0.3, 0.6, 0.5, 0.1], requires_grad=True)
    batch = Batch(targets=torch.tensor([0.4, 0.5, 0.2, 0.3]),
                  pair_first=torch.tensor([0, 1]), pair_second=torch.tensor([2, 3]),
                  pair_delta=torch.tensor([1.0, 1.0]))
    loss, parts = total_loss({"score": score}, batch, {"regression": 1.0, "rank": 2.0}, 0.02)
    reg = (0.1**2 + 0.1**2 + 0.3**2 + 0.2**2) / 8
    rank = (max(0, 0.02 - (0.3 - 0.5)) + max(0, 0.02 - (0.6 - 0.1))) / 4
    assert parts["regression"].item() == pytest.approx(reg)
    assert parts["rank"].item() == pytest.approx(rank)
    assert loss.item() == pytest.approx(reg + 2.0 * rank)
    loss.backward()
    # d rank / d ŷ_0 = -1/(2N)·δ for the active pair 0 → -0.25, times ω_r = 2 → -0.5; plus reg (0.3-0.4)/4
    assert score.grad[0].item() == pytest.approx(-0.5 + (-0.1) / 4)
    assert score.grad[2].item() == pytest.approx(0.5 + 0.3 / 4)


def test_classification_term_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    batch = Batch(targets=torch.zeros(2), labels=torch.tensor([0, 1]))
    loss, _ = total_loss({"logits": logits, "score": torch.zeros(2)}, batch, {"classification": 1.0}, 0.02)
    expected = -(torch.log_softmax(logits, 1)[0, 0] + torch.log_softmax(logits, 1)[1, 1]) / 2
    assert loss.item() == pytest.approx(expected.item())


def test_rank_term_without_pairs_is_an_error():
    with pytest.raises(ValueError, match="pairs"):
        total_loss({"score": torch.zeros(2)}, Batch(targets=torch.zeros(2)), {"rank": 1.0}, 0.02)


def test_tied_ground_truth_gives_delta_plus_one_as_the_paper_defines_it():
    # y_i = y_j: δ(y_i ≥ y_j) = +1, so the loss asks ŷ_i ≥ ŷ_j + α (the order within a tie is the caller's)
    y = torch.tensor([0.5, 0.5])
    delta = rank_delta(y[:1], y[1:])
    assert delta.tolist() == [1.0]
    a, b = torch.tensor([0.40]), torch.tensor([0.45])
    assert rank_loss(a, b, delta, 0.02).item() == pytest.approx((0.02 + 0.05) / 2)  # max(0, α − (−0.05)) / (2·1)
    assert rank_loss(b, a, rank_delta(y[1:], y[:1]), 0.02).item() == 0.0  # swapped: max(0, α − 0.05) = 0


def test_euclidean_loss_normalises_by_twice_the_number_of_images_not_elements():
    pred = torch.tensor([[0.1, 0.3], [0.5, 0.5]])
    y = torch.tensor([[0.0, 0.0], [0.5, 0.0]])
    # ‖(0.1, 0.3)‖² + ‖(0, 0.5)‖² = 0.10 + 0.25, over 2N = 4
    assert regression_loss(pred, y).item() == pytest.approx(0.35 / 4)
