"""Stage 2b: how similar each target is to the source, logged to the study run.

One number per (target, architecture): Cui et al. 2018's domain similarity in the
pretrained network's features (trainables.similarity says how, and why gamma is the
source's own spread). It is measured on the driver, after pretraining and before the
search, from the source checkpoints and the loaded targets (a few thousand images
through a small network: about a second each); the answer carries it
(study.answer.similarity), so `study best-freeze` prints it next to each target's rows.
Nothing here steers a choice: the similarity is reported, never used to pick a strategy.
"""

from __future__ import annotations

from study.stages.context import RunContext
from study.tracking import client as tracking
from trainables.registry import get_arch

METHOD = "Cui et al. 2018 domain similarity exp(-gamma * EMD), class-mean penultimate features"


def measure_similarity(ctx: RunContext) -> dict[str, dict[str, float]]:
    """Measure, print and log the similarity of every target to the source (per
    architecture with study-pretrained weights, `ctx.sources`); {target: {arch: similarity}}."""
    from trainables.similarity import measure, source_sample

    config, sources, log = ctx.config, ctx.sources, ctx.log
    if config.source.weights != "study" or not sources:
        why = (
            "torchvision weights: their source data is not here"
            if config.source.weights != "study"
            else "no strategy of the study uses pretrained weights"
        )
        log(f"similarity to the source: not measured ({why})")
        return {}
    sample = source_sample()
    found: dict[str, dict[str, float]] = {}
    metrics = {}
    for name, target in ctx.targets.items():
        for arch, state in sources.items():
            value = measure(get_arch(arch), state, target, sample)
            found.setdefault(name, {})[arch] = value.similarity
            metrics[tracking.similarity_metric(name, arch)] = value.similarity
            metrics[tracking.emd_metric(name, arch)] = value.emd
            log(
                f"similarity of {name} to {config.source.dataset} ({arch} features): "
                f"{value.similarity:.3f} (EMD {value.emd:.3g}, gamma {value.gamma:.3g})"
            )
    tracking.log_study_values(
        ctx.client, ctx.parent, params={tracking.PARAM_SIMILARITY_METHOD: METHOD}, metrics=metrics
    )
    return found
