"""The strict section base every config schema module shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    # strict: `seeds: true`, `sizes: ['2']` or `[2.0]` are refused, not converted;
    # allow_inf_nan: `.inf` / `.nan` are refused in every float (they overflow later).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
