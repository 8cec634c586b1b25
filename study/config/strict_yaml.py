"""The one strict YAML reader of study configs, presets and cluster files.

UTF-8 text; no repeated keys (PyYAML would keep the last one silently); merge keys
(`<<: *defaults`) as YAML users write them with anchors; `1e-6` a float, as in YAML 1.2.
What is absurd for a config is bounded before or while the text is parsed, never after:
the file's size (before reading it), the nesting depth and the number of values once the
aliases are expanded (an alias bomb, "billion laughs"), each checked as a node is composed,
and an integer's digits (Python refuses to convert over 4,300). Every problem is a
ConfigError of one line naming the file, where in it, and the problem. A pipe (`--config
<(...)`, a FIFO, /dev/stdin) is read once, as a stream, with the same size bound.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from study.errors import ConfigError

# The presets are under 3 KB, and PyYAML parses about 0.4 MB a second: a config of 256 KiB
# (100 times the largest preset) is still read in well under a second.
MAX_BYTES = 256 * 1024
MAX_DEPTH = 32  # the deepest key of the schema is 5 levels down (targets.0.sizes.0)
MAX_VALUES = 20_000  # every key, value and list entry, aliases expanded; presets hold ~150
MAX_INT_DIGITS = 100  # a seed or a count of images has at most 20
MERGE_TAG = "tag:yaml.org,2002:merge"
INT_TAG = "tag:yaml.org,2002:int"
_MERGE_KEY = object()  # `<<` in a mapping (distinct from a quoted '<<' key)


class Refused(yaml.YAMLError):
    """Valid YAML beyond a bound, or a value Python cannot build: `problem` at `mark`,
    then `hint` (what is allowed)."""

    def __init__(self, problem: str, mark, hint: str = "") -> None:
        super().__init__(problem)
        self.problem, self.problem_mark, self.hint = problem, mark, hint


def _part(parent, index):
    """The name of a node inside `parent` (a key, a list index); None for a key itself."""
    if isinstance(parent, SequenceNode):
        return index
    if isinstance(parent, MappingNode) and index is not None:
        return index.value if isinstance(index, ScalarNode) else "?"
    return None


def _children(node) -> list:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


class StrictLoader(yaml.SafeLoader):
    """YAML read strictly (see the module's docstring); one instance per document."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._names: tuple = ()  # where the node being composed is (keys, list indices)
        self._measures: dict[int, tuple[int, int]] = {}  # id(node): (values, depth), composed
        self._where: dict[int, str] = {}  # id(node): `section.key` it was written at
        self._aliases = 0
        self._checked: set[int] = set()  # mappings whose repeated keys have been looked for

    # --- composing: the bounds, as each node is read --------------------------------------

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)  # or "found undefined alias"
            if id(node) not in self._measures:  # still being composed: it holds the alias
                raise Refused(
                    f"alias *{event.anchor} is inside the node it names",
                    event.start_mark,
                    "; an alias repeats a node written before it, not one it is part of",
                )
            self._aliases += 1
            return node
        outer = self._names
        self._names = (*outer, _part(parent, index))
        if len(self._names) > MAX_DEPTH:  # before the composer recurses any further
            raise Refused(
                f"nested deeper than {MAX_DEPTH} levels",
                self.peek_event().start_mark,
                "; a study config is a few levels deep",
            )
        try:
            node = super().compose_node(parent, index)
            self._measure(node)
        finally:
            self._names = outer
        return node

    def _measure(self, node) -> None:
        measures = [self._measures[id(child)] for child in _children(node)]
        values = 1 + sum(count for count, _ in measures)
        depth = 1 + max((deep for _, deep in measures), default=0)
        self._measures[id(node)] = (values, depth)
        named = [str(name) for name in self._names if name is not None]
        self._where[id(node)] = ".".join(named) or "(top level)"
        expanded = " once its aliases are expanded" if self._aliases else ""
        if depth > MAX_DEPTH:
            raise Refused(
                f"nested deeper than {MAX_DEPTH} levels{expanded}",
                node.start_mark,
                "; a study config is a few levels deep",
            )
        if values > MAX_VALUES:
            raise Refused(
                f"more than {MAX_VALUES:,} values{expanded}",
                node.start_mark,
                "; a study config holds a few hundred",
            )

    # --- constructing: repeated keys, integers, values Python cannot build -----------------

    def flatten_mapping(self, node) -> None:
        # Before the merge keys are flattened into it (PyYAML edits the node in place): a
        # key written twice is refused, a key that overrides a merged one is not.
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._refuse_repeated_keys(node)
        super().flatten_mapping(node)

    def _refuse_repeated_keys(self, node) -> None:
        seen = set()
        for key_node, _ in node.value:
            merge = key_node.tag == MERGE_TAG
            key = _MERGE_KEY if merge else self.construct_object(key_node)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: PyYAML's constructor names it
                continue
            if repeated and merge:
                where = self._where.get(id(node), "(top level)")
                raise Refused(
                    f"`{where}`: merge key '<<' appears twice",
                    key_node.start_mark,
                    "; merge several mappings with `<<: [*a, *b]`",
                )
            if repeated:
                raise ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )

    def construct_object(self, node, deep=False):
        where = self._where.get(id(node), "(top level)")
        if node.tag == INT_TAG and isinstance(node, ScalarNode):
            digits = sum(char.isalnum() for char in node.value)
            if digits > MAX_INT_DIGITS:
                raise Refused(
                    f"`{where}`: an integer of {digits:,} digits",
                    node.start_mark,
                    f"; no setting takes one of more than {MAX_INT_DIGITS}",
                )
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as error:  # e.g. the date 2024-13-45
            shown = repr(node.value) if isinstance(node, ScalarNode) else "the value"
            shown = shown if len(shown) <= 40 else f"{shown[:30]}... ({len(shown)} characters)"
            kind = node.tag.rsplit(":", 1)[-1]
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            problem = f"`{where}`: {shown} is not a valid {kind}: {reason}"
            raise Refused(problem, node.start_mark) from None


# YAML 1.1 (PyYAML) reads `1e-6` as a string, which the strict schema would refuse; as in
# YAML 1.2 and JSON, a number with an exponent and no dot is a float.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1024:.0f} KiB"


def read_bounded(path: Path, what: str) -> bytes:
    """The bytes of a file, or of a pipe read once as a stream: at most MAX_BYTES, or
    ConfigError (a regular file's size is refused before it is read)."""
    try:
        found = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot read it ({error.strerror or error})") from None
    if stat.S_ISDIR(found.st_mode):
        raise ConfigError(f"{what} {path} is a folder; give the path of a YAML file")
    regular = stat.S_ISREG(found.st_mode)
    if not (regular or stat.S_ISFIFO(found.st_mode) or stat.S_ISCHR(found.st_mode)):
        raise ConfigError(f"{what} {path} is neither a file nor a pipe; give a YAML file")
    limit = f"a {what} is at most {_size(MAX_BYTES)}"
    if regular and found.st_size > MAX_BYTES:
        raise ConfigError(f"{path}: {_size(found.st_size)}; {limit}")
    try:
        with path.open("rb") as stream:  # a pipe: read once, at most one byte too many
            raw = stream.read(MAX_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot read it ({error.strerror or error})") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: more than {_size(MAX_BYTES)}; {limit}")
    return raw


def read_yaml(path: str | Path, what: str = "config file"):
    """The data of a YAML file or pipe, or ConfigError with one line: a folder, a missing
    file, a file too large, a binary or non-UTF-8 file, invalid YAML, repeated keys and
    the bounds of parse_yaml are named as such."""
    path = Path(path)
    raw = read_bounded(path, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte {raw[error.start]:#04x} at offset "
            f"{error.start}); a {what} is YAML text"
        ) from None
    if "\0" in text:
        raise ConfigError(f"{path}: a binary file (it holds NUL bytes); a {what} is YAML text")
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str):
    """The data of YAML text, read strictly (see the module's docstring), or ConfigError
    with one line naming `source` and the problem."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        if isinstance(error, Refused):
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{source}: {error.problem}{where}{error.hint}") from None
        where = f" on line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{source}: not valid YAML ({problem}{where})") from None
