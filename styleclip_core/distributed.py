"""The one way the library's long jobs see torch.distributed (``torchrun``): which rank this process
is, how many there are, and the process group when there are several.

``torchrun --nproc_per_node N python -m styleclip_core ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; ``init()`` joins the group (NCCL on CUDA
devices, gloo on CPUs) and pins each rank to its GPU. A plain ``python`` run is rank 0 of 1 and
never touches torch.distributed.
"""
from __future__ import annotations

import os
from typing import Sequence, TypeVar

import torch

T = TypeVar("T")


def env_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment, (0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def world() -> tuple[int, int]:
    """(rank, world size) of this process: the process group's when one is initialised, else torchrun's environment's."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return env_world()


def is_main() -> bool:
    return world()[0] == 0


def device_for_rank(device: str | torch.device) -> torch.device:
    """``cuda`` becomes this rank's GPU (``LOCAL_RANK``); other devices are returned as they are."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def init(device: str | torch.device = "cpu") -> bool:
    """Join torchrun's process group when there are several ranks (NCCL for CUDA, gloo otherwise);
    returns whether this is a multi-rank run. Idempotent."""
    rank, size = env_world()
    if size <= 1:
        return False
    if not torch.distributed.is_initialized():
        device = device_for_rank(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=size)
    return True


def shard(items: Sequence[T], rank: int | None = None, size: int | None = None) -> list[T]:
    """This rank's share of ``items``: every ``size``-th one from ``rank`` (round robin, so the
    shares differ in length by at most one)."""
    if rank is None or size is None:
        rank, size = world()
    return list(items[rank::size])


def barrier():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
