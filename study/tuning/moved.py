"""The module paths of study/ before it had rooms, for Ray experiments pickled then.

Ray pickles a phase's searcher, scheduler and callbacks (and the study config they hold)
by module path into the experiment folder (`tuner.pkl`); a study started before the move
names the old paths, and `--resume` would end in ModuleNotFoundError. Before a restore,
each old path is made to resolve to the module that now holds its classes, so such a
study resumes (tests/test_resume.py shows it).
"""

from __future__ import annotations

import importlib
import sys

OLD_PATHS = {  # the module before the move -> the module now
    "study.config_base": "study.config.base",
    "study.size_buckets": "study.config.size_buckets",
    "study.target_config": "study.config.target",
    "study.config": "study.config.schema",
    "study.config_file": "study.config.files",
    "study.stores": "study.stores.urls",
    "study.store_checks": "study.stores.checks",
    "study.signals": "study.stores.signals",
    "study.tracking": "study.tracking.client",
    "study.mlflow_names": "study.tracking.names",
    "study.trial_logger": "study.tracking.trial_logger",
    "study.dataset_inputs": "study.tracking.dataset_inputs",
    "study.runtime": "study.tuning.runtime",
    "study.tuner": "study.tuning.tuner",
    "study.searcher": "study.tuning.searcher",
    "study.scheduler": "study.tuning.scheduler",
    "study.progress": "study.tuning.progress",
    "study.query": "study.answer.query",
    "study.paired": "study.answer.paired",
    "study.report": "study.answer.report",
    "study.plots": "study.answer.plots",
    "study.descriptions": "study.answer.descriptions",
    "study.similarity": "study.answer.similarity",
    "study.target": "study.stages.load",
    "study.sources": "study.stages.pretrain",
    "study.search_phase": "study.stages.search",
    "study.confirm_phase": "study.stages.confirm",
    "study.resume": "study.stages.resume",
    "study.driver": "study.stages.lease",
    "study.protocol": "study.stages.protocol",
    "study.cli": "study.cli.commands",
    "study.ui": "study.cli.ui",
    "study.validate_command": "study.cli.validate",
    "study.cluster": "study.cli.cluster_file",
    "study.archs_table": "study.cli.archs",
}


def alias_old_paths() -> None:
    """Make every old module path resolve to the module that replaced it. Where the old
    name is a package now (study.config, study.stores, study.tracking), the package is
    given the names it lacks from its replacing module, so `study.config.StudyConfig`
    unpickles as before; every other old name is an alias in sys.modules."""
    for old, new in OLD_PATHS.items():
        module = importlib.import_module(new)
        try:
            package = importlib.import_module(old)
        except ModuleNotFoundError:
            sys.modules.setdefault(old, module)
            continue
        for name, value in vars(module).items():
            if not name.startswith("__") and not hasattr(package, name):
                setattr(package, name, value)
