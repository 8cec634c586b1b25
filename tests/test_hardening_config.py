"""Bad configs and data, as a hostile but realistic user writes them: `study validate` and
`study run` both end with exit 2 and one line naming the problem, no traceback, and no
file written in the folder (no stores, no ray_results, no caches)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
import yaml

from tests.test_bad_input import CASES as EARLIER_CASES
from tests.test_datasets import make_folder

SMALL = {"target": {"sizes": [1], "seeds": 1, "val_per_class": 1, "test_per_class": 1}}


def config(**sections) -> str:
    return yaml.safe_dump({"name": "bad", **sections})


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: what PIL checks on opening."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def one_class_folder(root: Path) -> str:
    make_folder(root / "pets", classes=("cat",), per_class=6)
    return config(target={**SMALL["target"], "dataset": "imagefolder:pets"})


def bomb_folder(root: Path) -> str:
    make_folder(root / "pets", classes=("cat", "dog"), per_class=6)
    (root / "pets" / "dog" / "huge.png").write_bytes(png_header(20000, 20000))
    return config(target={**SMALL["target"], "dataset": "imagefolder:pets"})


# case -> (the config file's content, or a function writing data and returning it; the
# texts the one line must hold)
CASES = {
    "binary file": (b"\x00\x01\x02\xff\xfe\x00name: x\n", ["study.yaml", "not a UTF-8 text file"]),
    "NUL bytes": (b"name: x\n\x00\x00\n", ["study.yaml", "binary file"]),
    "latin-1 file": ("name: café\n".encode("latin-1"), ["not a UTF-8 text file", "0xe9"]),
    "empty file": (b"", ["the config file is empty", "name:"]),
    "comments only": (b"# nothing here\n", ["the config file is empty"]),
    "duplicate key": (b"name: a\nname: b\n", ["key 'name' appears twice", "line 2"]),
    "duplicate nested key": (
        b"name: a\ntarget:\n  seeds: 1\n  seeds: 2\n",
        ["key 'seeds' appears twice"],
    ),
    "seeds: true": (config(target={"seeds": True}), ["`target.seeds`", "valid integer"]),
    "download: yes-string": (
        config(target={"download": "yes"}),
        ["`target.download`", "valid boolean"],
    ),
    "size as string": (config(target={"sizes": ["2"]}), ["`target.sizes`", "'2' is not"]),
    "size as float": (config(target={"sizes": [2.0]}), ["`target.sizes`", "2.0 is not"]),
    "infinite lr": (b"name: bad\nsearch:\n  lr: {low: 0.01, high: .inf}\n", ["finite number"]),
    "nan weight decay": (b"name: bad\nsource:\n  weight_decay: .nan\n", ["finite number"]),
    "name of 300 characters": (config(name="n" * 300), ["`name`", "1 to 80 characters"]),
    "name .": (config(name="."), ["`name`", "starting with a letter or digit"]),
    "name ..": (config(name=".."), ["`name`", "starting with a letter or digit"]),
    "name with a slash": (config(name="a/b"), ["`name`", "letters, digits"]),
    "one class": (one_class_folder, ["pets has 1 class subfolder", "at least 2 classes"]),
    "decompression bomb": (bomb_folder, ["cannot read image", "huge.png", "decompression"]),
    "not a mapping": (b"- a\n- b\n", ["must be a YAML mapping", "list"]),
    "invalid YAML": (b"name: [unclosed\n", ["not valid YAML"]),
}
CASES.update(
    {f"earlier: {case}": (config(**data), texts) for case, (data, texts) in EARLIER_CASES.items()}
)


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_refused(done, expected: list[str]) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for text in expected:
        assert text.lower() in lines[0].lower(), (text, lines[0])


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_is_one_line_exit_2_and_writes_nothing(workdir, cli_in_process, case, command):
    content, expected = CASES[case]
    if callable(content):
        content = content(workdir)
    path = workdir / "study.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = files_under(workdir)
    done = cli_in_process([command, "--config", "study.yaml"])
    assert_refused(done, expected)
    assert files_under(workdir) == before


def test_a_folder_given_as_config_is_named_as_a_folder(workdir, cli_in_process):
    (workdir / "configs").mkdir()
    for command in ("validate", "run"):
        done = cli_in_process([command, "--config", "configs"])
        assert_refused(done, ["config file configs is a folder", "YAML file"])
    assert files_under(workdir) == {"configs"}


def test_validate_lists_every_problem_it_can_find(workdir, cli_in_process):
    (workdir / "study.yaml").write_text(
        "name: ..\n"
        "target:\n  sizes: [1, 5000]\n  seeds: true\n"
        "search:\n  architectures: [vgg99, lenet5, nonet]\n  lr: {low: 0.1, high: .inf}\n"
    )
    done = cli_in_process(["validate", "--config", "study.yaml"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    for text in ("`name`", "`target.seeds`", "`search.lr.high`", "'vgg99'", "'nonet'", "5000"):
        assert sum(text in line for line in lines) == 1, (text, lines)
    assert len(lines) == 6, lines
    assert files_under(workdir) == {"study.yaml"}


def test_a_cluster_file_that_is_binary_or_repeats_a_key_is_one_line(workdir, cli_in_process):
    (workdir / "cluster.yaml").write_bytes(b"\xff\xfe\x00cluster_name: x\n")
    (workdir / "twice.yaml").write_text("cluster_name: a\ncluster_name: b\n")
    for name, text in (("cluster.yaml", "not a UTF-8"), ("twice.yaml", "appears twice")):
        done = cli_in_process(["validate", "--preset", "smoke", "--cluster", name])
        assert_refused(done, [name, text])


def test_strict_types_still_read_numbers_as_yaml_users_write_them(workdir, cli_in_process):
    # PyYAML alone reads 1e-4 as a string; a quoted '1e-3' stays one, and is refused.
    (workdir / "study.yaml").write_text(
        "name: exp\nsearch:\n  lr: {low: 1e-4, high: 3E-1}\n  weight_decay: {low: 1e-06, high: 1.0e-3}\n"
    )
    done = cli_in_process(["validate", "--config", "study.yaml"])
    assert done.returncode == 0, done.stderr
    (workdir / "study.yaml").write_text("name: exp\nsearch:\n  lr: {low: '1e-4', high: 0.3}\n")
    done = cli_in_process(["validate", "--config", "study.yaml"])
    assert_refused(done, ["`search.lr.low`", "valid number", "'1e-4'"])
