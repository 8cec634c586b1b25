"""`study archs`: the registry as a table, every number computed from a built model."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import pytest
from torchvision.models import get_weight

from study.cli.archs import run
from study.cli.commands import build_parser, cmd_archs
from trainables.registry import get_arch, list_archs


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["archs", *argv])


@pytest.fixture(scope="module")
def table() -> dict[str, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run(parse("--format", "json")) == 0
    return {row["name"]: row for row in json.loads(out.getvalue())}


def test_json_lists_every_registered_architecture(table):
    assert list(table) == list_archs()
    for name, row in table.items():
        spec = get_arch(name)
        assert row["family"] == spec.family
        assert row["num_stages"] == spec.num_stages == len(row["stages"])
        assert row["stages"] == list(spec.stage_names)
        assert row["parameters"] > 0 and row["depth"] > 0 and row["gflops"] > 0
        assert row["size_mb"] == pytest.approx(row["parameters"] * 4 / 2**20)
        assert row["gflops"] == pytest.approx(2 * row["gmacs"])
        assert row["weight_sources"][0] == "none"
        assert row["weight_sources"][-2:] == ["checkpoint:<path>", "study:<source>"]
        tv = [s.removeprefix("torchvision:") for s in row["weight_sources"][1:-2]]
        assert tv == list(spec.torchvision_weights)


def test_lecture_numbers(table):
    assert table["vgg16"]["parameters"] == 138_357_544
    assert table["vgg19"]["parameters"] == 143_667_240
    assert table["vgg16"]["depth"] == 16
    assert table["vgg19"]["depth"] == 19
    assert table["alexnet"]["depth"] == 8
    assert table["zfnet"]["depth"] == 8
    assert table["lenet5"]["depth"] == 5
    assert round(table["vgg16"]["size_mb"]) == 528


def test_flops_agree_with_torchvision_metadata(table):
    # torchvision's `_ops` are GMACs at the default input size, measured the same way.
    for name, row in table.items():
        for weights in get_arch(name).torchvision_weights:
            assert round(row["gmacs"], 3) == pytest.approx(get_weight(weights).meta["_ops"]), name


def test_table_format_prints_one_row_per_architecture(capsys):
    assert run(parse()) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "family", "params", "depth"]
    for name in list_archs():
        assert any(line.split()[0] == name for line in lines[2:]), name
    assert "138,357,544" in out


def test_parser_defaults_and_choices():
    args = parse()
    assert args.format == "table" and args.func is cmd_archs
    with pytest.raises(SystemExit):
        parse("--format", "xml")
