"""Messages that name the argument: every public function taking a path refuses ``None``, ``bytes``,
numbers, an empty string, a folder where a file belongs (and a file where a folder belongs) with a
``TypeError``/``ValueError``/``OSError`` that names the argument and says what was expected, not
pathlib's or torch's words. Where a model is involved it is left as it was."""
import os

import pytest
import torch

from captum_3dcam._safe_load import load_numpy_pickle
from captum_3dcam.datasets import (JHMDB, UCF101_24, ActDetectorGT, VideoClipDataset, boxes_from_puppet_mask,
                                   load_pyannot, read_split_file)
from captum_3dcam.models import load_hara_checkpoint, resnext3d, resnext3d_from_checkpoint
from captum_3dcam.models.i3d import i3d_kinetics400
from captum_3dcam.models.small import Small3DCNN
from captum_3dcam.training.small_recipe import load_or_train_small_model, train_small_model
from captum_3dcam.models.small_checkpoint import load_small_checkpoint
from captum_3dcam.models.train_checkpoint import load_checkpoint
from captum_3dcam.models.train_checkpoint import save_checkpoint
from captum_3dcam.video.io import count_frames, read_frames, read_video, save_gif, save_mp4, save_video, video_fps

from test_invariants import assert_unchanged, snapshot


class BytesPathLike:
    """An ``os.PathLike`` whose ``__fspath__`` gives bytes (pathlib refuses it with its own words)."""

    def __fspath__(self):
        return b"clip.mp4"


FRAMES = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)

#: (function of the bad path, the argument's name as the message must give it)
PATH_FUNCTIONS = {
    "read_video": (lambda p: read_video(p), "path"),
    "read_frames": (lambda p: read_frames(p), "source"),
    "count_frames": (lambda p: count_frames(p), "source"),
    "video_fps": (lambda p: video_fps(p), "path"),
    "save_gif": (lambda p: save_gif(FRAMES, p), "path"),
    "save_mp4": (lambda p: save_mp4(FRAMES, p), "path"),
    "save_video": (lambda p: save_video(FRAMES, p), "path"),
    "load_checkpoint": (lambda p: load_checkpoint(p), "checkpoint"),
    "save_checkpoint": (lambda p: save_checkpoint(p, Small3DCNN(num_classes=2)), "path"),
    "i3d_kinetics400": (lambda p: i3d_kinetics400(checkpoint=p), "checkpoint"),
    "load_small_checkpoint": (lambda p: load_small_checkpoint(p), "--checkpoint"),
    "load_or_train_small_model": (lambda p: load_or_train_small_model(p), "path"),
    "train_small_model": (lambda p: train_small_model(p, progress=False), "path"),
    "load_numpy_pickle": (lambda p: load_numpy_pickle(p), "checkpoint"),
    "ActDetectorGT.load": (lambda p: ActDetectorGT.load(p), "gt"),
    "load_pyannot": (lambda p: load_pyannot(p), "pyannot"),
    "read_split_file": (lambda p: read_split_file(p), "split_file"),
    "boxes_from_puppet_mask": (lambda p: boxes_from_puppet_mask(p), "puppet_mask"),
    "UCF101_24 annotations": (lambda p: UCF101_24(".", p), "annotations"),
    "JHMDB root": (lambda p: JHMDB(p), "root"),
    "VideoClipDataset root": (lambda p: VideoClipDataset(p, {}, []), "root"),
}

NOT_PATHS = {
    "None": (None, TypeError, ["expected a path as str or os.PathLike", "NoneType"]),
    "bytes": (b"clip.mp4", TypeError, ["bytes", "os.fsdecode"]),
    "int": (3, TypeError, ["expected a path", "int"]),
    "float": (2.5, TypeError, ["expected a path", "float"]),
    "list": (["a.mp4"], TypeError, ["expected a path", "list"]),
    "PathLike giving bytes": (BytesPathLike(), TypeError, ["__fspath__ returns bytes"]),
    "empty string": ("", ValueError, ["empty string"]),
}


NONE_MEANS_DEFAULT = {"i3d_kinetics400", "load_small_checkpoint", "train_small_model", "load_or_train_small_model"}


@pytest.mark.parametrize("bad", sorted(NOT_PATHS))
@pytest.mark.parametrize("function", sorted(PATH_FUNCTIONS))
def test_a_path_argument_that_is_not_a_path_is_named(function, bad):
    if bad == "None" and function in NONE_MEANS_DEFAULT:
        pytest.skip(f"{function}(None) is the documented default")
    call, name = PATH_FUNCTIONS[function]
    value, exc, words = NOT_PATHS[bad]
    with pytest.raises(exc) as info:
        call(value)
    text = str(info.value)
    assert text.startswith(f"{name}: "), text
    assert all(w in text for w in words), text


FILE_ARGUMENTS = ["read_video", "video_fps", "load_checkpoint", "i3d_kinetics400", "load_small_checkpoint",
                  "load_numpy_pickle", "ActDetectorGT.load", "load_pyannot", "read_split_file",
                  "boxes_from_puppet_mask", "UCF101_24 annotations", "save_gif", "save_mp4", "save_checkpoint"]


@pytest.mark.parametrize("function", FILE_ARGUMENTS)
def test_a_folder_where_a_file_belongs_is_named(function, tmp_path):
    call, name = PATH_FUNCTIONS[function]
    folder = tmp_path / "a-folder.mp4"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"^{name}: .*a-folder\.mp4 is a folder, expected a file"):
        call(folder)


@pytest.mark.parametrize("function", ["JHMDB root", "VideoClipDataset root"])
def test_a_file_where_a_folder_belongs_is_named(function, tmp_path):
    call, name = PATH_FUNCTIONS[function]
    a_file = tmp_path / "JHMDB"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match=rf"^{name}: .*JHMDB is a file, expected a folder"):
        call(a_file)


@pytest.mark.parametrize("checkpoint, words", [
    (3, ["checkpoint", "path (str or os.PathLike) or a dict", "int"]),
    (None, ["checkpoint", "path (str or os.PathLike) or a dict", "NoneType"]),
    (b"w.pth", ["checkpoint", "bytes"]),
], ids=["int", "None", "bytes"])
def test_a_checkpoint_that_is_neither_a_path_nor_a_dict_leaves_the_model(checkpoint, words):
    model = Small3DCNN(num_classes=3)
    before = snapshot(model)
    for call in (lambda: load_hara_checkpoint(model, checkpoint), lambda: resnext3d_from_checkpoint(checkpoint)):
        with pytest.raises(TypeError) as info:
            call()
        assert all(w in str(info.value) for w in words), str(info.value)
    assert_unchanged(model, before)


def test_resnext3d_with_a_number_as_checkpoint():
    with pytest.raises(TypeError, match=r"checkpoint: expected a path \(str or os.PathLike\) or a dict .* int"):
        resnext3d(depth=50, num_classes=4, checkpoint=3)


def test_load_checkpoint_with_a_bad_path_leaves_the_model(tmp_path):
    model = Small3DCNN(num_classes=3)
    before = snapshot(model)
    for bad in (3, None, b"x.pt", tmp_path):
        with pytest.raises((TypeError, IsADirectoryError), match="checkpoint"):
            load_checkpoint(bad, model)
    assert_unchanged(model, before)


APP_CASES = {
    "explain_video VIDEO=None": (lambda tmp: _explain(None), TypeError, ["VIDEO", "NoneType"]),
    "explain_video VIDEO=bytes": (lambda tmp: _explain(b"clip.mp4"), TypeError, ["VIDEO", "bytes"]),
    "explain_video VIDEO is a folder": (lambda tmp: _explain(tmp), IsADirectoryError, ["VIDEO", "is a folder"]),
    "explain_video --checkpoint=3": (lambda tmp: _explain(_video(tmp), checkpoint=3), TypeError, ["--checkpoint", "int"]),
    "explain_video --labels=3": (lambda tmp: _explain(_video(tmp), labels_file=3), TypeError, ["--labels", "int"]),
    "explain_video --labels is a folder": (lambda tmp: _explain(_video(tmp), labels_file=tmp), IsADirectoryError,
                                           ["--labels", "is a folder"]),
    "explain_video out=3": (lambda tmp: _explain(_video(tmp), out=3), TypeError, ["--out", "int"]),
    "run_demo out=None": (lambda tmp: _demo(out=None), TypeError, ["--out", "NoneType"]),
    "run_demo checkpoint=b''": (lambda tmp: _demo(out=tmp / "o", checkpoint=b"m.pt"), TypeError, ["--checkpoint", "bytes"]),
    "run_evaluate --root=3": (lambda tmp: _evaluate("jhmdb", root=3), TypeError, ["--root", "int"]),
    "run_evaluate --root is a file": (lambda tmp: _evaluate("jhmdb", root=_video(tmp)), NotADirectoryError,
                                      ["--root", "is a file"]),
    "run_evaluate --annotations=bytes": (lambda tmp: _evaluate("jhmdb", root=tmp, annotations=b"gt.pkl"), TypeError,
                                         ["--annotations", "bytes"]),
    "run_evaluate --checkpoint=2.5": (lambda tmp: _evaluate("synthetic", checkpoint=2.5), TypeError,
                                      ["--checkpoint", "float"]),
    "run_evaluate out=[]": (lambda tmp: _evaluate("synthetic", out=[]), TypeError, ["--out", "list"]),
}


def _video(tmp):
    path = tmp / "clip.mp4"
    path.write_bytes(b"never decoded")
    return path


def _explain(video, **kwargs):
    from captum_3dcam.apps.explain import explain_video

    return explain_video(video, "small-synthetic", progress=False, **kwargs)


def _demo(**kwargs):
    from captum_3dcam.apps.demo import run_demo

    return run_demo(quick=True, progress=False, **kwargs)


def _evaluate(dataset, **kwargs):
    from captum_3dcam.evaluation import run_evaluate

    return run_evaluate(dataset, model="small-synthetic", max_videos=1, progress=False, **kwargs)


@pytest.mark.parametrize("case", sorted(APP_CASES))
def test_application_paths_are_named_as_on_the_command_line(case, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))
    call, exc, words = APP_CASES[case]
    with pytest.raises(exc) as info:
        call(tmp_path)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_messages_never_quote_pathlib():
    for value in (None, 3, b"x"):
        with pytest.raises(TypeError) as info:
            read_video(value)
        assert "argument should be" not in str(info.value) and "expected str, bytes" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_not_read_as_a_video(tmp_path):
    pipe = tmp_path / "clip.mp4"
    os.mkfifo(pipe)
    with pytest.raises(FileNotFoundError, match="path: no video file at"):  # not a regular file: never opened
        read_video(pipe)
