"""The PyTorch entry point: items carry the curated values, the image's own ratings, and the
paper's transforms exactly as the reference models compute them."""

import numpy as np
import pytest
import torch

from aadb_toolkit import hub, schema, sources
from aadb_toolkit.models.pipeline import CropSampler, decode_warp
from aadb_toolkit.torch_data import AADBTorchDataset, PaperTransform, collate, paper_transforms


@pytest.fixture(scope="module")
def data(tiny_curated):
    return sources.load(tiny_curated)


def test_items_hold_the_curated_values_and_the_images_ratings(data):
    ds = AADBTorchDataset(data, "test")
    test = data.split("test")
    assert len(ds) == len(test) > 0
    for i in (0, len(ds) - 1):
        item, row = ds[i], test.iloc[i]
        assert item["image_id"] == row["image_id"]
        assert item["score"].item() == pytest.approx(row["score"]) and item["score_mean"].item() == pytest.approx(row["score_mean"])
        np.testing.assert_allclose(item["attributes"].numpy(), row[list(schema.ATTRIBUTES)].to_numpy(float), rtol=1e-6)
        mine = data.ratings[data.ratings["image_id"] == row["image_id"]]
        assert item["ratings"]["rater_id"] == list(mine["rater_id"])
        assert item["ratings"]["score"].tolist() == list(mine["score"])
        assert item["ratings"]["attributes"].shape == (len(mine), len(schema.ATTRIBUTES))
        assert item["image"].size == data.open_image(row["image_id"]).size
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(ValueError, match="unknown split"):
        AADBTorchDataset(data, "tset")


def test_the_centre_crop_equals_the_reference_models_pipeline(data):
    image_id = data.split("test")["image_id"].iloc[0]
    t = PaperTransform(False, warp_size=72, crop_size=64)
    ours = t(data.open_image(image_id))
    sampler = CropSampler(torch.from_numpy(decode_warp(data, image_id, 72).copy())[None], 64,
                          PaperTransform(False).mean, PaperTransform(False).std)
    assert torch.equal(ours, sampler.crops(np.zeros(1, dtype=np.int64), *sampler.centre(1))[0])
    assert ours.shape == (3, 64, 64) and PaperTransform(False)(data.open_image(image_id)).shape == (3, 227, 227)


def test_training_crops_are_random_and_seeded(data):
    image = data.open_image(data.split("train")["image_id"].iloc[0])
    t = paper_transforms(warp_size=72, crop_size=48)["train"]
    torch.manual_seed(0)
    a = [t(image) for _ in range(6)]
    torch.manual_seed(0)
    b = [t(image) for _ in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(a[0], x) for x in a[1:])


def test_dataloader_batches_with_collate(data):
    ds = AADBTorchDataset(data, "train", transform=PaperTransform(True, warp_size=72, crop_size=64))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate)))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["score"].shape == (4,)
    assert batch["attributes"].shape == (4, 11) and len(batch["ratings"]) == 4


def test_a_published_folder_serves_the_same_items(tiny_curated, data, tmp_path):
    hub.publish(data, tmp_path / "pub")
    ours, theirs = AADBTorchDataset(data, "validation"), AADBTorchDataset(tmp_path / "pub", "validation")
    assert [ours[i]["image_id"] for i in range(len(ours))] == [theirs[i]["image_id"] for i in range(len(theirs))]
    pairs = lambda r: sorted(zip(r["rater_id"], r["score"].tolist()))  # noqa: E731 - row order may differ
    assert pairs(ours[0]["ratings"]) == pairs(theirs[0]["ratings"])
    assert ours[0]["score"] == theirs[0]["score"]
