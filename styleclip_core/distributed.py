"""The one way the library's long jobs see torch.distributed (``torchrun``): which rank this process
is, how many there are, and the process group when there are several.

``torchrun --nproc_per_node N python -m styleclip_core ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; ``init()`` joins the group (NCCL on CUDA
devices, gloo on CPUs) and pins each rank to its GPU. A plain ``python`` run is rank 0 of 1 and
never touches torch.distributed.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence, TypeVar

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


def group_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, (0, 1) without one: what the long
    jobs share their work by (a process with torchrun's variables but no group works alone)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


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


def is_distributed() -> bool:
    """Whether this process is one of several ranks of an initialised process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` of rank ``src`` on every rank (pickled; keep tensors in it on the CPU). Without a
    process group: ``obj``."""
    if not is_distributed():
        return obj
    box = [obj if group_world()[0] == src else None]
    torch.distributed.broadcast_object_list(box, src)
    return box[0]


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank (pickled; tensors on the CPU)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * group_world()[1]
    torch.distributed.all_gather_object(out, obj)
    return out


def gather_object(obj: T, dst: int = 0) -> list[T] | None:
    """Every rank's ``obj`` in rank order on rank ``dst``, None on the others (pickled; tensors on
    the CPU)."""
    if not is_distributed():
        return [obj]
    rank, size = group_world()
    out: list | None = [None] * size if rank == dst else None
    torch.distributed.gather_object(obj, out, dst)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks, in place (on the device NCCL or gloo reduces on); returns ``t``."""
    if is_distributed():
        torch.distributed.all_reduce(t, torch.distributed.ReduceOp.SUM)
    return t


def split_batch(count: int, rank: int | None = None, size: int | None = None) -> tuple[int, int]:
    """(start, stop) of this rank's contiguous slice of a batch of ``count``: sizes differ by at
    most one, the larger slices first, and every rank gets at least one item (else an error)."""
    if rank is None or size is None:
        rank, size = group_world()
    if count < size:
        raise ValueError(f"a global batch of {count} cannot be split across {size} ranks: give a batch of at least {size}")
    base, extra = divmod(count, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def finish():
    """Leave the process group (after a last barrier), so every rank exits together; idempotent."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def on_main(fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` run on rank 0 alone (reading or choosing a file that may exist only
    on its machine), its result sent to every rank. When it raises, rank 0 raises that exception
    and every other rank a RuntimeError with its message, so no rank waits for one that failed.
    Without a process group: the call itself."""
    if not is_distributed():
        return fn(*args, **kwargs)
    if group_world()[0] == 0:
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            broadcast_object((False, f"{type(e).__name__}: {e}"))
            raise
        broadcast_object((True, result))
        return result
    ok, value = broadcast_object(None)
    if not ok:
        raise RuntimeError(f"rank 0 failed: {value}")
    return value
