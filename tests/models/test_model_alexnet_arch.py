"""AlexNet: standard ImageNet state-dict keys and shapes; loading a standard-keyed file."""

import hashlib

import pytest
import torch

from aadb_toolkit.errors import InputError
from aadb_toolkit.models import AlexNet, build_model, load_trunk_weights, read_state_dict

#: torchvision's AlexNet state dict (keys → shapes), the layout of the common ImageNet checkpoints.
STANDARD = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


@pytest.fixture(scope="module")
def standard_file(tmp_path_factory):
    """A standard-keyed AlexNet file (random values with the ImageNet checkpoints' keys and shapes)."""
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=g) * 0.01 for k, s in STANDARD.items()}
    path = tmp_path_factory.mktemp("weights") / "alexnet_imagenet.pth"
    torch.save(state, path)
    return path, state


def test_state_dict_layout_matches_imagenet_alexnet():
    net = AlexNet()
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == STANDARD
    assert net(torch.zeros(1, 3, 227, 227)).shape == (1, 1000)


def test_rating_model_replaces_only_the_last_layer():
    net = build_model("regression")
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    trunk = {f"backbone.{k}": v for k, v in STANDARD.items() if not k.startswith("classifier.6.")}
    assert shapes == {**trunk, "head.weight": (1, 4096), "head.bias": (1,), "head.score_shift": (), "head.score_scale": ()}
    assert build_model("binary_confidence").state_dict()["head.weight"].shape == (2, 4096)


def test_standard_file_loads_into_the_front_end(standard_file):
    path, state = standard_file
    net = build_model("regression")
    head_before = net.head.weight.clone()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_trunk_weights(net, read_state_dict(path, sha256=digest))
    assert len(loaded) == 14 and "classifier.6.weight" not in loaded
    for k in loaded:
        assert torch.equal(net.backbone.state_dict()[k], state[k])
    assert torch.equal(net.head.weight, head_before)
    out = net(torch.zeros(2, 3, 227, 227))
    assert out["score"].shape == (2,)


def test_wrapped_and_prefixed_state_dicts_load(standard_file, tmp_path):
    _, state = standard_file
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    net = build_model("regression")
    load_trunk_weights(net, read_state_dict(wrapped))
    assert torch.equal(net.backbone.features[0].weight, state["features.0.weight"])


def test_bad_weights_files_are_clear_errors(standard_file, tmp_path):
    path, state = standard_file
    with pytest.raises(InputError, match="sha256 mismatch"):
        read_state_dict(path, sha256="0" * 64)
    with pytest.raises(InputError, match="model.width"):
        load_trunk_weights(build_model("regression", width=0.5), read_state_dict(path))
    partial = tmp_path / "partial.pt"
    torch.save({k: v for k, v in state.items() if not k.startswith("classifier.4")}, partial)
    with pytest.raises(InputError, match="missing AlexNet keys"):
        load_trunk_weights(build_model("regression"), read_state_dict(partial))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="weights-only"):
        read_state_dict(junk)
    with pytest.raises(InputError, match="no such"):
        read_state_dict(tmp_path / "missing.pt")


def test_small_inputs_are_rejected_clearly():
    with pytest.raises(ValueError, match="at least 63"):
        AlexNet(width=0.1)(torch.zeros(1, 3, 56, 56))
    assert AlexNet(width=0.1)(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


class _Payload:
    """Unpickling this would create the marker file: a weights file must never be unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_bearing_weights_file_is_refused_without_running_code(standard_file, tmp_path):
    _, state = standard_file
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({**state, "extra": _Payload(marker)}, evil)
    assert not marker.exists()
    with pytest.raises(InputError, match="weights-only") as e:
        read_state_dict(evil)
    assert str(evil) in str(e.value) and not marker.exists()
    # the sha256 check, when given, comes first and reads the file without unpickling it
    digest = hashlib.sha256(evil.read_bytes()).hexdigest()
    with pytest.raises(InputError, match="weights-only"):
        read_state_dict(evil, sha256=f"sha256:{digest.upper()}")
    assert not marker.exists()


def test_caffe_layout_weights_are_refused_with_an_explanation(tmp_path):
    from aadb_toolkit.models.alexnet_arch import CAFFE_SHAPES

    caffe = {k: torch.zeros(s) for k, s in STANDARD.items()}
    caffe.update({k: torch.zeros(s) for k, s in CAFFE_SHAPES.items()})
    path = tmp_path / "bvlc_alexnet.pth"
    torch.save(caffe, path)
    net = build_model("regression")
    before = net.backbone.features[0].weight.clone()
    with pytest.raises(InputError, match="Caffe AlexNet layout") as e:
        load_trunk_weights(net, read_state_dict(path), source=str(path))
    assert e.value.field == "features.0.weight" and str(path) in str(e.value)
    assert torch.equal(net.backbone.features[0].weight, before)  # nothing half-loaded
