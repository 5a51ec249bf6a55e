"""Seeding for a step: a CPU run seeds the CPU generator only, with torch.manual_seed's stream;
a run's CPU thread count holds inside its block only."""

import pytest
import torch

from aadb_toolkit.models.devices import cpu_threads, seed_torch


@pytest.mark.parametrize("seed", [0, 7, 2**63 - 2])
def test_a_cpu_seed_gives_the_stream_of_torch_manual_seed(seed):
    seed_torch(seed, "cpu")
    ours = torch.rand(6), torch.randint(0, 1000, (6,))
    torch.manual_seed(seed)
    theirs = torch.rand(6), torch.randint(0, 1000, (6,))
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])


def test_a_cpu_seed_queues_no_accelerator_seed(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", calls.append)
    seed_torch(3, "cpu")
    assert calls == []


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "meta"])
def test_any_other_device_seeds_every_generator(device, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "manual_seed", calls.append)
    seed_torch(11, device)
    assert calls == [11]


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_cpu_run_sets_its_threads_and_gives_the_caller_s_back_even_on_an_error(two_threads):
    with pytest.raises(RuntimeError, match="boom"), cpu_threads(1, "cpu"):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize(("n", "device"), [(None, "cpu"), (1, "meta"), (1, "cuda:0")])
def test_no_count_or_another_device_leaves_the_threads_alone(two_threads, n, device):
    with cpu_threads(n, device):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2

