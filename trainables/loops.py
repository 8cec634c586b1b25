"""What every training job here shares: SGD steps over a tensor dataset, accuracy, the
optimizer with its schedule, and the torch thread count for the job's CPUs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

OPTIMIZERS = ("sgd", "adam")


def cpu_threads(cpus: float) -> int:
    """Torch threads for a job Ray gave `cpus` CPUs: a fraction rounds down, at least 1
    (more threads than cores stall badly when jobs share a machine). Trials and
    pretraining tasks both use it; the pretraining checkpoint's cache key holds it."""
    return max(1, int(cpus))


def make_optimizer(groups: list[dict], total_steps: int, kind: str = "sgd"):
    """SGD with Nesterov momentum 0.9, or Adam, with a cosine decay to zero over
    `total_steps` (BiT-style). Adam needs no momentum tuning and copes with the few,
    noisy steps of tiny training sets (a measured 1-4 points at 1-10 examples per class,
    for fine-tuning and from scratch); SGD stays for pretraining on the large source."""
    total_steps = max(total_steps, 1)
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    if kind == "adam":
        optimizer = torch.optim.Adam(groups)
    else:
        optimizer = torch.optim.SGD(groups, momentum=0.9, nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    return optimizer, scheduler


def autocast(x: torch.Tensor):
    """bf16 autocast of the forward pass on CUDA (backward follows the forward's dtypes);
    disabled on CPU, where training stays float32."""
    cuda = x.device.type == "cuda"
    return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=cuda)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A random generator on `device`, seeded: a trial draws its mini-batches and
    augmentations where its data lives, so no draw waits on a host-device copy. On CPU it
    is the plain `torch.Generator().manual_seed(seed)`."""
    return torch.Generator(device=device).manual_seed(seed)


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
    transform=None,
) -> float:
    """Run `steps` SGD steps on random mini-batches; returns the mean loss.

    Batches are drawn as reshuffled passes over the data, so every example is seen
    equally often even when a tiny subset is smaller than one batch. `transform`, if
    given, maps each input batch (data augmentation) before the forward pass.

    Nothing is read back to the host per step: on a GPU a step of a small network takes
    microseconds and each read would make the host wait for it. The loss is summed where
    it is computed (in float64, which adds exactly as the Python float it replaced did)
    and read once at the end; a non-finite loss makes the sum non-finite (cross-entropy
    is never negative), so the trial still fails, at the end of these steps.
    """
    model.train()
    batch_size = min(batch_size, len(y))
    order = torch.empty(0, dtype=torch.long, device=generator.device)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for _ in range(steps):
        if len(order) < batch_size:
            drawn = torch.randperm(len(y), generator=generator, device=generator.device)
            order = torch.cat([order, drawn])
        index, order = order[:batch_size].to(x.device), order[batch_size:]
        batch = x[index] if transform is None else transform(x[index])
        with autocast(x):
            loss = F.cross_entropy(model(batch), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.detach().double()
    mean = total.item() / max(steps, 1)
    if not math.isfinite(mean):
        raise FloatingPointError(f"training loss became {mean}")
    return mean


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """The share of `x` classified as `y`, counted on the device and read once."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, len(y), batch_size):
        with autocast(x):
            logits = model(x[start : start + batch_size])
        correct += (logits.argmax(1) == y[start : start + batch_size]).sum()
    return correct.item() / len(y)
