"""Training on several processes or devices with torch.distributed, as launched by `torchrun`.

    torchrun --nproc-per-node 2 -m vs_stdo train video.mkv -o video.stdo ...

Every process (rank) decodes its share of the training frames (frame positions rank, rank+size, ...),
scores and labels them; the per-frame results are gathered so that every rank splits the same chunks.
All ranks draw the same global batch from one seeded generator; each trains on the patches of that
batch that lie in its frames, and the summed gradients are all-reduced before every optimiser step.
Each chunk model's loss is normalised by its patch count in the *global* batch, so a step on N ranks
is the same step as on one process with the same --batch and seed (up to float summation order).

Why not the DistributedDataParallel wrapper: in the chunk phase a step's patches are spread over k
models unevenly per rank (a rank may hold none of a model's patches), which DDP only handles with
`find_unused_parameters` and by averaging over ranks instead of over patches. One all-reduce of the
gradients per model says exactly what is meant. Rank 0 writes checkpoints and the bundle; every rank
reads the checkpoint on --resume (on several machines, put -o on a shared filesystem).
Backend: NCCL when training on CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


def main_process() -> bool:
    """Whether this is the process that speaks and writes: the only one, or rank 0 under torchrun (known from the
    environment before the process group is joined)."""
    return os.environ.get("RANK", "0") == "0"


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")  # this rank's training device (collectives live there too)

    @classmethod
    def join(cls, device: torch.device) -> "World":
        """The process group torchrun set up the environment for (WORLD_SIZE > 1), else a world of one.
        On CUDA each rank trains on the GPU of its LOCAL_RANK."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls(device=device)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if dist.get_rank() != 0:
            os.environ["TQDM_DISABLE"] = "1"  # one set of progress bars: the main rank's
        return cls(dist.get_rank(), dist.get_world_size(), device)

    @property
    def main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.rank == 0

    def share(self, count: int) -> range:
        """The positions (of `count` training frames) this rank decodes and holds."""
        return range(self.rank, count, self.size)

    def local(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Of (N, 2) (frame position, patch) items: which are this rank's, and those items with the position
        replaced by the index into this rank's frames."""
        mine = items[:, 0] % self.size == self.rank
        local = items[mine].clone()
        local[:, 0] //= self.size
        return mine, local

    def gather(self, local: np.ndarray, count: int) -> np.ndarray:
        """Per-frame arrays of every rank's share -> the (count, ...) array of all frames, on every rank."""
        if self.size == 1:
            return local
        rows = -(-count // self.size)
        padded = torch.zeros((rows, *local.shape[1:]), dtype=torch.from_numpy(local).dtype, device=self.device)
        padded[:len(local)] = torch.from_numpy(local).to(self.device)
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded)
        out = np.empty((count, *local.shape[1:]), local.dtype)
        for r, part in enumerate(parts):
            out[r::self.size] = part[:len(range(r, count, self.size))].cpu().numpy()
        return out

    def sum_gradients(self, model: torch.nn.Module) -> None:
        """All-reduce (sum) a model's gradients; a rank that had none of its patches adds zeros."""
        if self.size == 1:
            return
        params = list(model.parameters())
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.flatten() for p in params])  # one all-reduce, not one per tensor
        dist.all_reduce(flat)
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad.copy_(g.view_as(p))

    def any(self, flag: bool) -> bool:
        """Whether `flag` is set on any rank (so that all ranks stop at the same step)."""
        if self.size == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t)
        return bool(t.item())

    def first(self, value: float) -> float:
        """Rank 0's value on every rank (so that all ranks read time alike: stages end at the same step)."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(t, 0)
        return t.item()

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()
