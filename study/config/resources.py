"""ResourcesConfig, the `resources:` section: what one trial takes, and so how many trials
a node (or a whole cluster) holds at once."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from study.config.base import Strict


class ResourcesConfig(Strict):
    cpu_per_trial: Annotated[float, Field(gt=0)] = 1
    gpu_per_trial: float = Field(0, ge=0)
    max_concurrent_trials: int | None = Field(None, ge=1)
    num_cpus: int | None = Field(None, ge=1, description="local Ray runtime size (None: all)")

    def trials_held(self, cpus: float, gpus: float) -> int:
        """Trials that `cpus` CPUs and `gpus` GPUs hold at once: the CPUs' share, and for
        trials on GPUs the GPUs' too (8 at 0.125 of one GPU, whatever the CPUs)."""
        slots = int(cpus // self.cpu_per_trial)
        if self.gpu_per_trial > 0:  # 1e-9: 8 x 0.125 is 1 GPU, not a hair under
            slots = min(slots, int(gpus // self.gpu_per_trial + 1e-9))
        return max(0, slots)
