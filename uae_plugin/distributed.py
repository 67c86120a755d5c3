"""torch.distributed plumbing for data-set generation: joining the group, sharding, agreeing on errors.

Guarantees:

- Sharding: with ``world`` ranks, chunk ``k`` is attacked by rank ``k % world`` and by no other rank;
  one process is the case ``world == 1`` (rank 0 attacks every chunk).
- Agreement: :meth:`Ranks.agree` is a collective. When any rank reports an error, every rank raises the
  same one (the lowest such rank's class and message), so no rank is left waiting for ranks that gave up.
- Launch: :func:`process_group` joins the group that ``torchrun`` describes in the environment, with gloo
  for data on the CPU and nccl for data on CUDA (each process then uses the GPU ``LOCAL_RANK``), and
  destroys the group on the way out, error or not.
- Only torch.distributed's own collectives are used (``all_gather_object``, ``broadcast_object_list``);
  nothing else is sent between processes.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH = "torchrun --nproc_per_node=N -m uae_plugin.cli generate|trial ..."


def launched_world_size() -> int:
    """``WORLD_SIZE`` from the environment (set by torchrun), 1 when it is not set."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(
            f"WORLD_SIZE in the environment must be an integer, got {value!r}; launch with {LAUNCH}"
        ) from err


def wants_distributed(requested: bool) -> bool:
    """Whether to run on a process group: ``requested`` (``--distributed``) or torchrun started several processes.

    Raises ``ValueError`` (one line) when distributed mode is wanted but the environment torchrun sets is missing.
    """
    world = launched_world_size()
    if not requested and world <= 1:
        return False
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        reason = "--distributed" if requested else f"WORLD_SIZE={world} in the environment"
        raise ValueError(
            f"{reason} needs the process-group environment that torchrun sets ({', '.join(missing)} missing); "
            f"launch with: {LAUNCH}"
        )
    return True


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: ``rank`` of ``world``; ``Ranks()`` is a single process."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls, distributed: bool | None = None) -> Ranks:
        """The default process group's ranks; with ``distributed=None``, distributed iff a group is initialised."""
        initialised = dist.is_available() and dist.is_initialized()
        if distributed is None:
            distributed = initialised
        if distributed and not initialised:
            raise ValueError(
                "distributed=True needs an initialised torch.distributed process group; launch with torchrun and "
                "call inside uae_plugin.distributed.process_group(), or pass distributed=None"
            )
        return cls(dist.get_rank(), dist.get_world_size()) if distributed else cls()

    @property
    def leader(self) -> bool:
        """Rank 0: the one that owns ``manifest.json``, prints and shows progress."""
        return self.rank == 0

    def shard(self, n_chunks: int) -> range:
        """The chunk numbers this rank attacks: ``k`` with ``k % world == rank``."""
        return range(self.rank, n_chunks, self.world)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank (a collective)."""
        if self.world == 1:
            return [obj]
        objs: list[Any] = [None] * self.world
        dist.all_gather_object(objs, obj)
        return objs

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a collective; other ranks' ``obj`` is ignored)."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def each(self, step: Callable[[], Any]) -> Any:
        """``step()`` on every rank; if it raises on any rank, every rank raises (a collective when ``world > 1``)."""
        result, error = None, None
        try:
            result = step()
        except Exception as err:  # shared with every rank by agree(), which re-raises it
            error = err
        self.agree(error)
        return result

    def on_leader(self, step: Callable[[], Any]) -> Any:
        """``step()`` on rank 0 only; every rank gets its result (broadcast), or raises its error (a collective)."""
        result, error = None, None
        if self.leader:
            try:
                result = step()
            except Exception as err:  # shared with every rank by agree(), which re-raises it
                error = err
        self.agree(error)
        return self.share(result)

    def agree(self, error: Exception | None) -> None:
        """A collective: returns on every rank if no rank has an error, else raises the same error on every rank.

        The lowest rank's error wins; its message gets a ``rank r:`` prefix unless it comes from rank 0.
        Built-in exception classes are kept; any other becomes ``RuntimeError`` naming the original class.
        """
        if self.world == 1:
            if error is not None:
                raise error
            return
        report = None if error is None else (type(error).__module__, type(error).__qualname__, str(error))
        for r, got in enumerate(self.gather(report)):
            if got is None:
                continue
            if r == 0 == self.rank:
                raise error  # type: ignore[misc]  # the original, traceback and all
            module, name, message = got
            message = f"rank {r}: {message}" if r else message
            cls = getattr(builtins, name, None) if module == "builtins" else None
            if isinstance(cls, type) and issubclass(cls, Exception):
                raise cls(message) from (error if r == self.rank else None)
            raise RuntimeError(f"{name}: {message}") from (error if r == self.rank else None)


def _import_dynamo() -> None:
    try:
        import torch._dynamo  # noqa: F401
    except ImportError:  # a torch without dynamo has nothing that holds on to the group
        pass


@contextmanager
def process_group(device: torch.device | str = "cpu") -> Iterator[Ranks]:
    """Join the process group torchrun describes (gloo for ``device`` CPU, nccl for CUDA); destroy it on exit.

    With CUDA, each process is pinned to GPU ``LOCAL_RANK``: put its model and data there.

    ``torch._dynamo`` is imported first: imported while a group exists (torch.optim does so lazily, e.g. when
    the attack builds its Adam optimisers), it keeps the group alive past ``destroy_process_group``, and the
    group's gloo worker threads can then abort the interpreter at exit ("terminate called without an active
    exception"). Code that creates its own group should import ``torch._dynamo`` before it, too.
    """
    wants_distributed(True)
    _import_dynamo()
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend)
    try:
        yield Ranks.current(True)
    finally:
        dist.destroy_process_group()
