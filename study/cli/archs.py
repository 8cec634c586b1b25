"""`study archs`: the registry as the lecture's comparison table, every number computed.

Each entry is built on PyTorch's meta device (shapes only, no memory, no initialisation
cost, so VGG and ResNet-152 take milliseconds) at the table's setting (1000 classes and 3
input channels unless `--num-classes` / `--in-channels` say otherwise), and measured:

- parameters: all parameters of the built model;
- depth: weight layers, i.e. the Conv2d and Linear modules of the built model (so it
  counts ResNet's projection shortcuts and the squeeze-excitation convs of MobileNet v3,
  which the names "ResNet-50" etc. leave out);
- size: parameters x 4 bytes (fp32), in MiB (2**20 bytes, as torchvision reports sizes);
- GFLOPs: one forward pass of one image at the default input size, counted by
  `torch.utils.flop_counter.FlopCounterMode`, which counts convolutions and matrix
  products only, at 2 FLOPs per multiply-accumulate. GMACs (= GFLOPs / 2) are printed too:
  they are what torchvision's weights metadata (`_ops`) and many papers call "FLOPs";
- stages and the weight sources each entry accepts (`*`: present in the torch cache).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainables.registry import ArchSpec, count_params, get_arch, list_archs, unavailable_archs
from trainables.weights import torchvision_cache_file

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def forward_flops(
    spec: ArchSpec, num_classes: int, in_channels: int, image_size: int, batch: int = 1
) -> tuple[int, nn.Module]:
    """FLOPs (2 per multiply-accumulate; convolutions and matrix products only) of one
    forward pass of `batch` images, and the meta-device model they were counted on. The
    one MAC counter of the project: `study archs` and bench/hardware.py both use it."""
    with torch.device("meta"):
        model = spec.build(num_classes, in_channels).eval()
        x = torch.empty(batch, in_channels, image_size, image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops(), model


def measure(spec: ArchSpec, num_classes: int = 1000, in_channels: int = 3) -> dict:
    """The table's row for `spec`, computed from a meta-device build."""
    flops, model = forward_flops(spec, num_classes, in_channels, spec.default_input_size)
    params = count_params(model)
    cached = [name for name in spec.torchvision_weights if torchvision_cache_file(name).exists()]
    return {
        "name": spec.name,
        "family": spec.family,
        "parameters": params,
        "depth": sum(isinstance(m, WEIGHT_LAYERS) for m in model.modules()),
        "size_mb": params * 4 / 2**20,
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "input_size": spec.default_input_size,
        "min_input_size": spec.min_input_size,
        "num_stages": spec.num_stages,
        "stages": list(spec.stage_names),
        "head": spec.head,
        "weight_sources": [
            "none",
            *(f"torchvision:{name}" for name in spec.torchvision_weights),
            "checkpoint:<path>",
            "study:<source>",
        ],
        "torchvision_cached": cached,
    }


def rows(num_classes: int = 1000, in_channels: int = 3) -> list[dict]:
    return [measure(get_arch(name), num_classes, in_channels) for name in list_archs()]


def _sources(row: dict) -> str:
    cached = set(row["torchvision_cached"])
    tv = [
        source.split(".", 1)[1] + ("*" if source.split(":", 1)[1] in cached else "")
        for source in row["weight_sources"]
        if source.startswith("torchvision:")
    ]
    return "none, " + (f"torchvision {'/'.join(tv)}, " if tv else "") + "checkpoint, study"


def format_table(table: list[dict]) -> str:
    header = (
        "name", "family", "params", "depth", "MB", "GFLOPs", "GMACs", "input", "stages",
        "stage names", "weight sources",
    )  # fmt: skip
    lines = [
        (
            row["name"],
            row["family"],
            f"{row['parameters']:,}",
            str(row["depth"]),
            f"{row['size_mb']:.1f}",
            f"{row['gflops']:.2f}",
            f"{row['gmacs']:.3f}",
            f"{row['input_size']} (min {row['min_input_size']})",
            str(row["num_stages"]),
            ",".join(row["stages"]),
            _sources(row),
        )
        for row in table
    ]
    widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6, 8}

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [render(header), "  ".join("-" * w for w in widths)]
    out += [render(cells) for cells in lines]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    num_classes, in_channels = args.num_classes, args.in_channels  # the CLI's defaults
    if num_classes < 1:
        print(f"study archs: --num-classes must be >= 1, got {num_classes}", file=sys.stderr)
        return 2
    table = rows(num_classes, in_channels)
    if args.format == "json":
        print(json.dumps(table, indent=2))
        return 0
    print(format_table(table))
    print(
        f"\n{len(table)} architectures at {num_classes} classes, {in_channels} input channel(s); "
        "GFLOPs = 2 x multiply-accumulates of one image at the default input size; "
        "depth = conv + linear layers; * = torchvision weights present in "
        f"{torch.hub.get_dir()}/checkpoints."
    )
    missing = unavailable_archs()
    if missing:
        extras = ",".join(sorted(set(missing.values())))
        print(f"Not installed: {', '.join(missing)} (pip install 'transfer-study[{extras}]').")
    return 0
