"""A resumed ``explain-dataset`` trusts nothing in ``--out`` it did not write (:mod:`captum_3dcam.evaluation.resume`).

Each case tampers with a finished run's files, resumes, and expects the untampered run back: the
same summary (frames counted, class accuracy, ids), the tampered video redone (a line says why), the
others untouched; a corrupt ``run.json`` stops the run with one line naming it; ids of distinct
file names never collide."""
import json
import shutil

import numpy as np
import pytest
import torch

from captum_3dcam import cli
from captum_3dcam.errors import Captum3DCamError
from captum_3dcam.evaluation.dataset_run import run_explain_dataset
from captum_3dcam.evaluation.resume import read_json, video_ids

VID = "synthetic-0001"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


def _run(out, checkpoint, **kwargs):
    return run_explain_dataset("synthetic", out=out, limit=3, checkpoint=checkpoint, device="cpu", progress=False,
                               **{"save_maps": True, **kwargs})


@pytest.fixture(scope="module")
def base(small_checkpoint, tmp_path_factory):
    """3 synthetic videos of 32 frames, maps saved, and their summary."""
    out = tmp_path_factory.mktemp("resume") / "out"
    return out, _run(out, small_checkpoint)


def _video(out, vid=VID):
    return out / "videos" / f"{vid}.json"


def _edit(**fields):
    def tamper(out):
        data = json.loads(_video(out).read_text())
        data.update(fields)
        _video(out).write_text(json.dumps(data))
    return tamper


def _cut_frames(out):
    data = json.loads(_video(out).read_text())
    for key in ("boxes", "gt_boxes", "hit", "iou"):
        data[key] = data[key][:3]
    data["frames"] = 3
    _video(out).write_text(json.dumps(data))


def _only_boxes_and_score(out):
    data = json.loads(_video(out).read_text())
    _video(out).write_text(json.dumps({"boxes": data["boxes"], "score": data["score"]}))


def _map(key, fn):
    def tamper(out):
        data = json.loads(_video(out).read_text())
        data[key] = [fn(v) for v in data[key]]
        _video(out).write_text(json.dumps(data))
    return tamper


def _first_box(box):
    def tamper(out):
        data = json.loads(_video(out).read_text())
        data["boxes"][next(i for i, b in enumerate(data["boxes"]) if b is not None)] = box
        _video(out).write_text(json.dumps(data))
    return tamper


def _write(text):
    return lambda out: _video(out).write_text(text)


def _huge(out):
    data = json.loads(_video(out).read_text())
    data["padding"] = "x" * (1 << 20)  # far more than a 32-frame video's file can hold
    _video(out).write_text(json.dumps(data))


def _no_maps(out):  # the first run was made without --save-maps
    shutil.rmtree(out / "maps")


def _truncated_maps(out):
    path = out / "maps" / f"{VID}.npz"
    path.write_bytes(path.read_bytes()[:-200])


def _maps_of_another_length(out):
    path = out / "maps" / f"{VID}.npz"
    np.savez_compressed(path, maps=np.zeros((31, 64, 64), np.float16))


def _symlink_to_another_video(out):
    _video(out).unlink()
    _video(out).symlink_to(_video(out, "synthetic-0000"))


def _no_run_record(out):
    (out / "run.json").unlink()


CASES = {  # name: (tamper, the videos it redoes)
    "cut to 3 of 32 frames": (_cut_frames, [VID]),
    "target 1e30, label 'x'": (_edit(target=1e30, label="x"), [VID]),
    "target out of the model's classes": (_edit(target=7, target_label="7"), [VID]),
    "only boxes and score": (_only_boxes_and_score, [VID]),
    "ious as strings": (_map("iou", lambda v: None if v is None else str(v)), [VID]),
    "ious above 1": (_map("iou", lambda v: None if v is None else 1.5), [VID]),
    "ious not those of the boxes": (_map("iou", lambda v: None if v is None else 1.0), [VID]),
    "hits as strings": (_map("hit", lambda v: None if v is None else "yes"), [VID]),
    "no ground truth (gt, hit, iou nulled)": (
        lambda out: [_map(k, lambda v: None)(out) for k in ("gt_boxes", "hit", "iou")], [VID]),
    "a box with x1 > x2": (_first_box([50.0, 1.0, 2.0, 9.0]), [VID]),
    "a box with NaN": (_first_box([float("nan"), 1.0, 2.0, 9.0]), [VID]),
    "a box of 3 numbers": (_first_box([1.0, 2.0, 9.0]), [VID]),
    "score Infinity": (_edit(score=float("inf")), [VID]),
    "another video's id": (_edit(video="synthetic-0000"), [VID]),
    "other windows (another --stride)": (_edit(windows=[[0, 16], [16, 32]]), [VID]),
    "other settings recorded": (_edit(settings={"preset": "paper"}), [VID]),
    "a JSON list": (_write("[1, 2, 3]"), [VID]),
    "nested 100000 deep": (_write(DEEP), [VID]),
    "a dict nested 100000 deep": (_write('{"a":' * 100_000 + "1" + "}" * 100_000), [VID]),
    "a 1 MB file": (_huge, [VID]),
    "not UTF-8": (lambda out: _video(out).write_bytes(b"\xff\xfe{"), [VID]),
    "a symlink to another video's file": (_symlink_to_another_video, [VID]),
    "maps not saved by the first run": (_no_maps, ["synthetic-0000", VID, "synthetic-0002"]),
    "a truncated .npz": (_truncated_maps, [VID]),
    "an .npz of 31 frames": (_maps_of_another_length, [VID]),
    "no run.json": (_no_run_record, ["synthetic-0000", VID, "synthetic-0002"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_out_is_redone_to_the_untampered_run(case, base, small_checkpoint, tmp_path, capsys):
    source, reference = base
    out = tmp_path / "out"
    shutil.copytree(source, out, symlinks=True)
    tamper, redone = CASES[case]
    tamper(out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.json") if not p.is_symlink()}
    capsys.readouterr()
    summary = _run(out, small_checkpoint)
    err = capsys.readouterr().err
    assert summary["localization"] == reference["localization"]  # frames counted, class accuracy, IoUs
    assert summary["videos"] == reference["videos"] == ["synthetic-0000", "synthetic-0001", "synthetic-0002"]
    for vid in reference["videos"]:
        got, want = (json.loads(_video(d, vid).read_text()) for d in (out, source))
        for key in ("frames", "target", "label", "score", "boxes", "gt_boxes", "hit", "iou", "windows"):
            assert got[key] == want[key], (vid, key)
        assert not _video(out, vid).is_symlink()
        maps = np.load(out / "maps" / f"{vid}.npz")["maps"]
        assert np.array_equal(maps, np.load(source / "maps" / f"{vid}.npz")["maps"]), vid
        if f"{vid}.json" in before:  # redone: written again; else left as it was
            assert (_video(out, vid).stat().st_mtime_ns != before[f"{vid}.json"]) == (vid in redone), vid
    for vid in redone if case != "no run.json" else ():
        assert f"redoing {vid}: " in err, err
    assert case != "no run.json" or "no run.json" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("content", [DEEP, '{"dataset": ' * 100_000 + "}" * 100_000, "{", "[1]", "x" * (2 << 20)],
                         ids=["list nested 100000 deep", "dict nested 100000 deep", "torn", "a list", "2 MB"])
def test_a_corrupt_run_json_is_one_line_naming_it(content, base, small_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(base[0], out)
    (out / "run.json").write_text(content)
    with pytest.raises(Captum3DCamError, match=r"run\.json.*fresh --out.*delete"):
        _run(out, small_checkpoint)
    code = cli.main(["explain-dataset", "--dataset", "synthetic", "--limit", "3", "--checkpoint",
                     str(small_checkpoint), "--device", "cpu", "-q", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "run.json" in err and "Traceback" not in err, err


def test_settings_of_another_type_are_named_briefly(base, small_checkpoint, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(base[0], out)
    saved = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**saved, "preset": "x" * 500_000}))
    with pytest.raises(Captum3DCamError, match="other settings: preset") as info:
        _run(out, small_checkpoint)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("sub", ["videos", "maps"])
def test_a_file_where_a_folder_of_the_run_goes(sub, base, small_checkpoint, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(base[0], out)
    shutil.rmtree(out / sub)
    (out / sub).write_text("x")
    with pytest.raises(Captum3DCamError, match=f"--out: .*{sub}"):
        _run(out, small_checkpoint)


def test_a_resume_without_tampering_redoes_nothing(base, small_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(base[0], out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    capsys.readouterr()
    assert _run(out, small_checkpoint)["localization"] == base[1]["localization"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()} == before
    assert "redoing" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ ids
@pytest.mark.parametrize("names", [
    ["walk/a b.avi", "walk/a_b.avi", "walk/a\nb.avi"],
    ["a/_b.avi", "a_/b.avi"],  # both "a___b.avi" once sanitized
    ["a/b.avi", "a__b.avi"],
    ["walk/A.avi", "walk/a.avi"],  # one file on a case-insensitive disk
    ["walk/x.avi", "walk/x.avi"],  # the same name twice: still two videos
    ["walk/é.avi", "walk/e\u0301.avi", "walk/e_.avi"],
    ["c/" + "v" * 250 + ".avi", "c/" + "v" * 251 + ".avi"],
    ["", ".", "..", "c/.hidden"],
])
def test_ids_unique_and_stable(names):
    ids = video_ids(names)
    assert len({i.casefold() for i in ids}) == len(names), ids
    assert video_ids(names) == ids and video_ids(names[::-1]) == ids[::-1] or len(set(names)) < len(names)
    for vid in ids:
        assert vid and not vid.startswith(".") and "/" not in vid and "\n" not in vid
        assert len(f".{vid}.json.4194304.tmp".encode()) <= 255


def test_plain_ids_unchanged():
    def _safe_id(name):  # the id of one name alone
        return video_ids([name])[0]

    assert video_ids(["v_0001", "walk/long.mp4", "Basketball/v_Basketball_g01_c01"]) == [
        "v_0001", "walk__long.mp4", "Basketball__v_Basketball_g01_c01"]
    assert _safe_id("v_0001") == "v_0001" and _safe_id("walk/long.mp4") == "walk__long.mp4"
    assert len({_safe_id(n) for n in ("a b.avi", "a_b.avi", "a\nb.avi")}) == 3


@pytest.fixture(scope="module")
def colliding_folder(tmp_path_factory):
    from captum_3dcam.video.io import save_mp4

    root = tmp_path_factory.mktemp("colliding") / "data"
    g = torch.Generator().manual_seed(0)
    for name in ("a b.avi", "a_b.avi", "a\nb.avi"):
        save_mp4((torch.rand(16, 32, 32, 3, generator=g) * 255).to(torch.uint8), root / "test" / "walk" / name)
    (root / "test" / "run").mkdir()
    return root


def test_colliding_file_names_are_three_videos(colliding_folder, small_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    kwargs = dict(root=colliding_folder, out=out, checkpoint=small_checkpoint, model="small-synthetic", device="cpu",
                  workers=0, progress=False)
    summary = run_explain_dataset("folder", **kwargs)
    ids = summary["videos"]
    assert len(ids) == len(set(ids)) == 3 and summary["num_videos"] == 3
    assert "walk__a_b.avi" not in ids  # the one file an earlier version wrote for all three is not reused
    from captum_3dcam.evaluation.dataset_run import dataset_videos
    from captum_3dcam.models.registry import get_model_spec

    assert dataset_videos("folder", get_model_spec("small-synthetic"), root=colliding_folder, limit=1)[0].ids == ids[:1]
    files = sorted(p.stem for p in (out / "videos").glob("*.json"))
    assert files == sorted(ids) and all(json.loads(_video(out, v).read_text())["video"] == v for v in ids)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    capsys.readouterr()
    assert run_explain_dataset("folder", **kwargs)["videos"] == ids  # stable: the resume redoes nothing
    assert {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()} == before
    assert "redoing" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------- bounded reads
@pytest.mark.parametrize("content, why", [
    (DEEP, "nested too deep"), ("{" * 10, "not JSON"), ("x" * ((1 << 20) + 1), "larger than 1048576 bytes"),
    ("1" * 90, None),  # digits within the limit
], ids=["deep", "torn", "large", "number"])
def test_read_json_is_bounded(content, why, tmp_path):
    path = tmp_path / "f.json"
    path.write_text(content)
    data, reason = read_json(path, 1 << 20)
    assert (reason is None) == (why is None) and (why is None or why in reason), reason
    fifo = tmp_path / "fifo"
    import os

    os.mkfifo(fifo)
    assert read_json(fifo, 100) == (None, "not a regular file")  # never blocks on a pipe
