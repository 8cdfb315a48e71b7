"""Multi-pathway video models: SlowFast's pathway packing, one clip in, and several clips as Captum inputs.

    from captum_3dcam.models.pathways import PathwayInputs, SlowFastClip, pack_pathways

    slow, fast = pack_pathways(clip, alpha=4)     # (N, 3, T // 4, H, W) and the clip itself (N, 3, T, H, W)
    model = SlowFastClip(net.blocks, alpha=4)     # one clip in (what the windowed pipeline feeds)
    maps = GlobalLocal3DCam(model, layers).attribute(clip)                   # (N, 1, T, H, W)
    slow_map, fast_map = GlobalLocal3DCam(PathwayInputs(net), layers).attribute((slow, fast))

``net`` is PyTorchVideo's SlowFast (``pytorchvideo.models.hub.slowfast_r50()``), whose forward takes
the LIST ``[slow, fast]``. Lives here: :func:`pack_pathways` (PyTorchVideo's ``PackPathway``,
batched), :class:`SlowFastClip` (packs one clip and runs the network's ``blocks``, under the same
names: the hub's state dict loads into it unchanged and ``--layers`` are PyTorchVideo's, e.g.
``blocks.4.multipathway_blocks.0`` the slow res5, ``blocks.4.multipathway_blocks.1`` the fast res5)
and :class:`PathwayInputs` (a list-input network as a model of several positional clips, Captum's
multi-input convention). Nothing here imports PyTorchVideo: the blocks come from the caller.

Does not live here: PyTorchVideo's models by name, their weights and preprocessing
(:mod:`.pytorchvideo_video`), their default layers (:mod:`.presets`), the ``--model
pytorchvideo:<name>`` entries (:mod:`.registry`).
"""
import copy
import numbers
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ["pack_pathways", "SlowFastClip", "PathwayInputs"]


def _check_alpha(alpha) -> int:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Integral) or alpha < 1:
        raise ValueError(f"alpha: expected a positive int (the fast pathway's frames per slow frame), got {alpha!r}")
    return int(alpha)


def pack_pathways(clip: Tensor, alpha: int = 4) -> Tuple[Tensor, Tensor]:
    """SlowFast's two inputs of one clip: ``(slow, fast)``.

    ``fast`` is the clip itself (every frame); ``slow`` takes ``T // alpha`` frames at
    ``torch.linspace(0, T - 1, T // alpha).long()``, as PyTorchVideo's ``PackPathway`` does.

    Raises:
        TypeError: ``clip`` is not a tensor.
        ValueError: ``clip`` is not 5-D or has fewer than ``alpha`` frames, or a bad ``alpha``.

    Shape:
        ``(N, C, T, H, W)`` -> ``(N, C, T // alpha, H, W)``, ``(N, C, T, H, W)``
    """
    alpha = _check_alpha(alpha)
    if not isinstance(clip, Tensor):
        raise TypeError(f"clip: expected a tensor (N, C, T, H, W), got {type(clip).__name__}")
    if clip.dim() != 5:
        raise ValueError(f"clip: expected a 5-D tensor (N, C, T, H, W), got shape {tuple(clip.shape)}")
    frames = clip.shape[2]
    if frames < alpha:
        raise ValueError(f"clip: {frames} frames, fewer than alpha={alpha}: the slow pathway would have none")
    index = torch.linspace(0, frames - 1, frames // alpha).long().to(clip.device)
    return clip.index_select(2, index), clip


def _head_pools(block: nn.Module) -> Optional[nn.ModuleList]:
    """The pools of PyTorchVideo's ``PoolConcatPathway`` (slow, fast) when both are fixed ``AvgPool3d``."""
    pools = getattr(block, "pool", None)
    if type(block).__name__ != "PoolConcatPathway" or not isinstance(pools, nn.ModuleList) or len(pools) != 2:
        return None
    return pools if all(isinstance(p, nn.AvgPool3d) for p in pools) else None


class SlowFastClip(nn.Module):
    r"""A SlowFast network that takes ONE clip: packs it (:func:`pack_pathways`) and runs ``blocks``.

    The blocks are those of PyTorchVideo's ``Net`` (``net.blocks``: 0-4 ``MultiPathWayWithFuse``,
    5 ``PoolConcatPathway``, 6 ``ResNetBasicHead``), shared with ``net`` (the same weights), under
    the same names, so ``net``'s state dict loads here unchanged. On a clip of the frames its head
    was built for (the fast pool's length: 32 for the hub models) the output equals
    ``net(list(pack_pathways(clip, alpha)))`` exactly.

    Explained in windows (``explain``, :class:`~captum_3dcam.video.windows.WindowCam`), it is a model
    of two input pathways: :meth:`split_inputs` and :meth:`forward_inputs` let the attribution take
    ``(slow, fast)`` as Captum inputs, so each window gives the map of all layers and one map per
    pathway (:attr:`input_names`), each pathway's layers on its own clip.

    A longer clip, ``T = 32 + alpha k`` frames (e.g. a window padded by a temporal margin), works
    too, where ``net`` refuses it (its two fixed head pools would give different numbers of
    positions): the head's fast pool steps ``alpha`` frames at a time (a copy of block 5 with that
    stride; ``net``'s own block is not touched), so both pathways pool the same sliding windows
    of time, ``slow [p, p + 8)`` with ``fast [alpha p, alpha p + 32)``, and the head averages them.

    Args:
        blocks: ``net.blocks`` of a PyTorchVideo SlowFast network.
        alpha: frames of the fast pathway per slow frame (4 for the hub models).

    Shape:
        ``(N, 3, T, H, W)`` -> ``(N, num_classes)``, ``T`` a multiple of ``alpha``.
    """

    def __init__(self, blocks: nn.ModuleList, alpha: int = 4) -> None:
        super().__init__()
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            raise TypeError(f"blocks: expected the nn.ModuleList net.blocks of a PyTorchVideo SlowFast network, "
                            f"got {type(blocks).__name__}")
        self.alpha = _check_alpha(alpha)
        self.num_frames: Optional[int] = None  # the frames the head was built for, when it has fixed pools
        own: List[nn.Module] = []
        for block in blocks:
            pools = _head_pools(block)
            if pools is not None and pools[1].stride[0] == 1:
                self.num_frames = int(pools[1].kernel_size[0])
                block = copy.deepcopy(block)  # parameter-free: the user's block keeps its stride
                block.pool[1].stride = (self.alpha, *block.pool[1].stride[1:])
            own.append(block)
        self.blocks = nn.ModuleList(own)

    #: the pathways' names, in the order of :meth:`split_inputs` (``explain`` names its pictures so)
    input_names = ("slow", "fast")

    def split_inputs(self, clip: Tensor) -> Tuple[Tensor, Tensor]:
        """``(slow, fast)`` of the clip (:func:`pack_pathways`), after checking its frames."""
        frames = clip.shape[2] if isinstance(clip, Tensor) and clip.dim() == 5 else None
        if frames is not None and (frames % self.alpha or (self.num_frames and frames < self.num_frames)):
            least = f"at least {self.num_frames}, " if self.num_frames else ""
            raise ValueError(f"clip: SlowFast takes {least}a multiple of alpha={self.alpha} frames "
                             f"(its pathways meet every {self.alpha} frames), got {frames}")
        return pack_pathways(clip, self.alpha)

    def forward_inputs(self, slow: Tensor, fast: Tensor) -> Tensor:
        """The network on its two pathways' clips (what the windowed explainers differentiate, so
        each pathway's layers map to their own clip: one map per pathway)."""
        x = [slow, fast]
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, clip: Tensor) -> Tensor:
        return self.forward_inputs(*self.split_inputs(clip))


class PathwayInputs(nn.Module):
    """A network whose forward takes a LIST of clips, as a model of several positional clips.

    ``PathwayInputs(net)(slow, fast) == net([slow, fast])``, so Captum's multi-input convention
    applies: ``GlobalLocal3DCam(PathwayInputs(net), layers).attribute((slow, fast))`` gives one
    map per pathway. The network is the submodule ``net``: its layers are named ``net.<name>``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net: expected an nn.Module whose forward takes a list of clips, got {type(net).__name__}")
        self.net = net

    def forward(self, *clips: Tensor) -> Tensor:
        return self.net(list(clips))
