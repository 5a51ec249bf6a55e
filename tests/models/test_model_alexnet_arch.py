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


def _pooled_top(net: AlexNet, m: torch.Tensor) -> torch.Tensor:
    """The top layers as torchvision's AlexNet computes them: pool5 pooled to 6×6, flattened, fc6, fc7."""
    h = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(m, 6), 1)
    for i in range(6):
        h = net.classifier[i](h)
    return h


@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (3, 2), (5, 7), (6, 6), (8, 9)])
def test_the_top_layers_give_the_pooled_fc6_and_its_gradients_on_any_map(hw):
    """On maps smaller than 6×6 the pooling is folded into fc6's weights: the same outputs and the
    same gradients (fc6's full weights, the map) as pooling first, to float rounding."""
    torch.manual_seed(0)
    net = AlexNet(None, width=0.1, dropout=0.0)
    m = torch.randn(3, net.classifier[1].in_features // 36, *hw, requires_grad=True)
    ours = net.top(m)
    grads = torch.autograd.grad(ours.pow(2).sum(), [m, net.classifier[1].weight, net.classifier[4].weight])
    ref = _pooled_top(net, m)
    ref_grads = torch.autograd.grad(ref.pow(2).sum(), [m, net.classifier[1].weight, net.classifier[4].weight])
    assert ours.shape == (3, net.feature_size) and ours.abs().sum() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def _fc6_inputs(net: AlexNet, m: torch.Tensor, monkeypatch) -> int:
    """The number of input features of the first linear layer the top layers multiply."""
    seen, linear = [], torch.nn.functional.linear
    monkeypatch.setattr(torch.nn.functional, "linear", lambda x, *a, **k: seen.append(x.shape[-1]) or linear(x, *a, **k))
    net.top(m)
    return seen[0]


def test_fc6_multiplies_each_position_of_a_small_map_once(monkeypatch):
    """A 64-px crop leaves a 1×1 pool5 map: fc6 reads its C values, not 36 copies of each."""
    net = AlexNet(None, width=0.1, dropout=0.0).eval()
    trunk = net.trunk(torch.randn(2, 3, 64, 64))
    c = net.classifier[1].in_features // 36
    assert trunk.shape == (2, c, 1, 1)
    assert _fc6_inputs(net, trunk, monkeypatch) == c
    assert _fc6_inputs(net, torch.randn(2, c, 6, 6), monkeypatch) == c * 36  # a 227-px crop's map: as pooled


def test_with_dropout_training_fc6_reads_every_pooled_position(monkeypatch):
    """fc6's dropout draws a mask per pooled position, so while it acts the map is pooled first."""
    net = AlexNet(None, width=0.1, dropout=0.5)
    c = net.classifier[1].in_features // 36
    assert _fc6_inputs(net.train(), torch.randn(2, c, 1, 1), monkeypatch) == c * 36
    assert _fc6_inputs(net.eval(), torch.randn(2, c, 1, 1), monkeypatch) == c


def test_the_top_copy_reads_the_map_and_keeps_the_sequential_keys():
    torch.manual_seed(1)
    net = AlexNet(None, width=0.1, dropout=0.0)
    copy = net.top_copy()
    plain = torch.nn.Sequential(*[net.classifier[i] for i in range(6)])
    assert list(copy.state_dict()) == list(plain.state_dict())
    m = torch.randn(4, net.classifier[1].in_features // 36, 1, 1)
    torch.testing.assert_close(copy(m), net.top(m))
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(net.fc7(x), _pooled_top(net, net.features(x)), rtol=1e-5, atol=1e-6)


def test_the_folded_fc6_runs_on_the_meta_device():
    net = AlexNet(None, width=0.1, dropout=0.0).to("meta")
    out = net.fc7(torch.empty(2, 3, 64, 64, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, net.feature_size)


def test_a_sha256_mismatch_shows_only_the_start_of_the_file_s_digest(standard_file):
    """Review 2026-12-04 (afternoon): the mismatch printed the whole sha256 of the given file, a fast
    unsalted digest that, for a key file given by mistake, lets anyone test guesses of the key."""
    import hashlib

    path, _ = standard_file
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(InputError, match="sha256 mismatch") as e:
        read_state_dict(path, sha256="0" * 64)
    assert digest[:12] in str(e.value) and digest[12:] not in str(e.value)


def test_the_rater_key_given_as_init_weights_is_refused_unread(tmp_path, monkeypatch):
    key = tmp_path / "keys" / "rater.key"
    key.parent.mkdir()
    key.write_text("correct-horse-battery-staple-secret\n")
    monkeypatch.setenv("AADB_RATER_KEY_FILE", str(key))
    with pytest.raises(InputError, match="rater key") as e:
        read_state_dict(key, sha256="0" * 64)
    assert "correct" not in str(e.value) and "mismatch" not in str(e.value)
