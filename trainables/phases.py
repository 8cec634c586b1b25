"""A trial's training phases: its strategy's phase plan (search_spaces.strategies) run
step by step, each phase at its freeze boundary with an optimizer of its own.

While stages are frozen and no augmentation is on, a phase trains only the rest of the
network on the frozen prefix's cached output (trainables.features); its status says
whether it did (`on`, or `off: <why>`), for the trial's `feature_cache` report.
"""

from __future__ import annotations

import torch

from search_spaces.strategies import plan_phases
from trainables.contract import TrialConfig
from trainables.features import cached_rest
from trainables.loops import make_optimizer, train_steps
from trainables.registry import count_params
from trainables.transfer import freeze, param_groups


def cache_off_reason(cfg: TrialConfig, boundary: int) -> str:
    if boundary == 0:
        return "off: nothing frozen"
    if cfg.augment:
        return f"off: augmentation ({'+'.join(cfg.augment)}) changes the inputs every step"
    if not cfg.feature_cache:
        return "off: disabled by the study config"
    return ""


class PhaseRun:
    """One phase set up: the boundary applied, the network to train and its inputs, an
    optimizer over the trainable parameters only."""

    def __init__(self, phase, cfg, spec, model, data, store) -> None:
        x, val_x = data
        freeze(model, spec, phase.boundary)
        self.status = cache_off_reason(cfg, phase.boundary)
        self.net, self.x, self.val_x, self.cache = model, x, val_x, None
        if not self.status:
            cache, rest, self.status = cached_rest(model, spec, phase.boundary, store, x)
            if cache is not None:
                self.net, self.cache = rest, cache
                self.x, self.val_x = cache.features(x), cache.features(val_x)
        groups = param_groups(
            model, spec, phase.lr, phase.backbone_lr_mult, cfg.weight_decay, phase.layer_decay
        )
        self.optimizer, self.scheduler = make_optimizer(groups, phase.steps, cfg.optimizer)
        self.remaining = phase.steps
        self.trainable = count_params(model, trainable_only=True)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.cache.features(x) if self.cache is not None else x


class Phases:
    """A trial's phase plan (search_spaces.strategies), each phase set up (PhaseRun) when
    the steps reach it."""

    def __init__(self, cfg: TrialConfig, spec, model, data, store, probe: str = "") -> None:
        self.cfg, self.spec, self.model, self.data, self.store = cfg, spec, model, data, store
        self.plan = [phase for phase in plan_phases(cfg, spec.num_stages) if phase.steps > 0]
        self.runs: list[PhaseRun] = []
        self.probe = probe  # the probed head's feature-cache status ('' without a probe)

    def current(self) -> PhaseRun:
        runs = self.runs
        if not runs or (runs[-1].remaining == 0 and len(runs) < len(self.plan)):
            phase = self.plan[len(runs)]
            runs.append(PhaseRun(phase, self.cfg, self.spec, self.model, self.data, self.store))
        return runs[-1]

    def train(self, steps: int, y, generator, transform, live: bool) -> tuple[PhaseRun, float]:
        """`steps` SGD steps, across a phase boundary where one falls among them (none
        when not `live`: an epoch done before a restart is bookkeeping only). Returns the
        phase run the steps ended in and their mean loss."""
        loss_sum, done = 0.0, 0
        run = self.current()
        while steps > 0:
            run = self.current()
            n = min(steps, run.remaining)
            loss = train_steps(
                run.net,
                run.optimizer,
                run.scheduler,
                run.x,
                y,
                n if live else 0,
                self.cfg.batch_size,
                generator,
                transform=transform,
            )
            loss_sum, done = loss_sum + loss * n, done + n
            run.remaining -= n
            steps -= n
        return run, loss_sum / max(done, 1)

    def cache_summary(self) -> str:
        parts = [(phase.name, run.status) for phase, run in zip(self.plan, self.runs, strict=False)]
        if self.probe:
            parts.insert(0, ("probe", self.probe))
        if len(parts) == 1:
            return parts[0][1]
        return "; ".join(f"{name}: {status}" for name, status in parts)
