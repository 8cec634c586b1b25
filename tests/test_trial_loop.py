"""The trial loop keeps the GPU fed: no host read of a device value per step, and on CPU
the results are bit-identical to the loop it replaced (kept below, verbatim, as the
reference: it read the loss twice per step and cut augmentation windows one image at a
time with Python ints)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import source_state, trial_config
from trainables import phases
from trainables.datasets import augment as augment_module
from trainables.loops import autocast, seeded_generator
from trainables.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")
TORCH = str(Path(torch.__file__).parent)


def reference_train_steps(
    model, optimizer, scheduler, x, y, steps, batch_size, generator, transform=None
) -> float:
    model.train()
    batch_size = min(batch_size, len(y))
    order = torch.empty(0, dtype=torch.long)
    total = 0.0
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(len(y), generator=generator)])
        index, order = order[:batch_size], order[batch_size:]
        batch = x[index] if transform is None else transform(x[index])
        with autocast(x):
            loss = F.cross_entropy(model(batch), y[index])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    return total / max(steps, 1)


def reference_random_windows(x, pad, mode, generator):
    n, _, height, width = x.shape
    padded = F.pad(x, (pad,) * 4, mode=mode)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    return torch.stack(
        [
            padded[i, :, int(dy) : int(dy) + height, int(dx) : int(dx) + width]
            for i, (dy, dx) in enumerate(offsets)
        ]
    )


TRIALS = [
    ("lenet5", "finetune", 0, ("shift",)),
    ("cnn4", "freeze-b", 2, ()),  # frozen prefix cached: the loop runs on features
    ("cnn4", "lp-ft", 0, ("crop", "flip")),
    ("resnet18", "freeze-b", 3, ("crop", "shift", "flip")),
    ("cnn4", "scratch", 0, ("flip",)),
]


def fit_with(digits, arch, strategy, freeze, kinds):
    cfg = trial_config(arch, strategy, freeze, augment=kinds, steps=12, reports=3, size=3)
    reports = []
    model, metrics = fit(cfg, digits, {arch: source_state(arch)}, reports.append)
    return model.state_dict(), reports


@pytest.mark.parametrize("arch,strategy,freeze,kinds", TRIALS)
def test_a_trial_on_cpu_is_bit_identical_to_the_loop_it_replaced(
    digits, monkeypatch, arch, strategy, freeze, kinds
):
    state, reports = fit_with(digits, arch, strategy, freeze, kinds)
    with monkeypatch.context() as patch:
        patch.setattr(phases, "train_steps", reference_train_steps)
        patch.setattr(augment_module, "random_windows", reference_random_windows)
        reference_state, reference_reports = fit_with(digits, arch, strategy, freeze, kinds)

    for report, reference in zip(reports, reference_reports, strict=True):
        for key in ("train_loss", "val_acc", "best_val_acc", "test_acc"):
            assert report.get(key) == reference.get(key), (key, report, reference)
    assert state.keys() == reference_state.keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, reference_state[name]), name


def test_augmentation_windows_are_the_ones_cut_image_by_image():
    x = torch.arange(6 * 3 * 16 * 16, dtype=torch.float32).reshape(6, 3, 16, 16)
    for mode, pad in (("constant", 2), ("replicate", 1)):
        ours = augment_module.random_windows(x, pad, mode, torch.Generator().manual_seed(3))
        theirs = reference_random_windows(x, pad, mode, torch.Generator().manual_seed(3))
        assert torch.equal(ours, theirs)


class HostReads:
    """Counts every way the trial code reads a tensor's value on the host (on CUDA each
    one waits for the GPU to finish everything queued before it). Reads inside torch
    itself are left out: the optimizers read their step counters, which live on the host
    even for a CUDA model."""

    METHODS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy")

    def __init__(self, monkeypatch):
        self.count = 0
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self.counting(original))

    def counting(self, original):
        def read(tensor, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if not caller.startswith(TORCH):
                self.count += 1
            return original(tensor, *args, **kwargs)

        return read


@pytest.mark.parametrize(
    "arch,strategy,freeze,kinds",
    [("cnn4", "finetune", 0, ("shift", "flip")), ("lenet5", "lp-ft", 0, ("crop",))],
)
def test_host_reads_per_report_do_not_grow_with_the_steps(
    digits, monkeypatch, arch, strategy, freeze, kinds
):
    """A report's host reads are a constant (the mean loss, the accuracy), whether it
    trains 4 steps or 40: nothing is read per step."""

    def reads(steps: int) -> int:
        cfg = trial_config(arch, strategy, freeze, augment=kinds, steps=steps, reports=2)
        sources = {arch: source_state(arch)}
        counter = HostReads(monkeypatch)
        fit(cfg, digits, sources, lambda metrics: None)
        monkeypatch.undo()
        return counter.count

    few, many = reads(8), reads(80)
    assert few == many
    assert many <= 2 * 8  # per report: a handful, not one per step


def test_a_non_finite_loss_still_stops_the_trial(digits):
    cfg = trial_config("cnn4", "finetune", 0, lr=1e30, steps=6, reports=2)
    with pytest.raises(FloatingPointError, match="training loss became"):
        fit(cfg, digits, {"cnn4": source_state("cnn4")}, lambda metrics: None)


def test_the_generator_lives_on_the_device_it_draws_for():
    generator = seeded_generator(7, torch.device("cpu"))
    assert generator.device.type == "cpu"
    assert torch.equal(
        torch.randperm(10, generator=generator),
        torch.randperm(10, generator=torch.Generator().manual_seed(7)),
    )


def test_channels_last_reaches_every_convolution_where_the_layout_shows():
    """What tests/test_gpu.py checks on CUDA, checkable here: the conversion itself."""
    from tests.test_gpu import convolutions_with_several_inputs
    from trainables.registry import get_arch
    from trainables.train import to_channels_last

    for arch in ("resnet18", "cnn4", "lenet5"):
        model = to_channels_last(get_arch(arch).build(num_classes=10, in_channels=1))
        weights = convolutions_with_several_inputs(model)
        assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
        assert not all(w.is_contiguous() for w in weights), arch
