"""Settings that depend on the training subset's size (examples per class): a list of
buckets, each for subsets of at most `up_to` per class, read first match first; the last
is open (`up_to: null`, any size, 'all' included). `training.steps` and
`search.confirm_candidates` are such lists."""

from __future__ import annotations

from pydantic import Field

from study.config.base import Strict


class SizeBucket(Strict):
    """A setting for subsets with at most `up_to` examples per class (None: any size)."""

    up_to: int | None = Field(None, ge=1)


def for_size(buckets: list, size: int | None):
    """The first bucket that holds `size` (None: 'all' per class)."""
    for bucket in buckets:
        if bucket.up_to is None or (size is not None and size <= bucket.up_to):
            return bucket
    raise AssertionError("unreachable: last bucket is open")


def check_last_open(buckets: list, where: str) -> None:
    if buckets[-1].up_to is not None:
        raise ValueError(f"the last {where} bucket must have up_to: null (any size)")


class StepBucket(SizeBucket):
    """Training length (optimizer steps) of a trial on subsets of this size."""

    steps: int = Field(ge=1)


class CandidateBucket(SizeBucket):
    """How many of a label's best search configurations the confirm phase retrains on
    every seed, at this size: the one with the best mean validation accuracy answers."""

    candidates: int = Field(ge=1)
