"""Where the study's trials run: the Ray cluster this driver belongs to, or a local runtime.

In order (the first that applies):
1. `RAY_ADDRESS`: the cluster it names (a head's `ip:port`, `ray://` for Ray Client, `auto`
   for what `ray start` made here); `local` is 3.
2. A cluster that `ray start` made on this machine: its address file in Ray's default temp
   dir (`$RAY_TMPDIR/ray`, else /tmp/ray), with its GCS process running here. This is how
   `ray submit cluster.yaml study/run.py` runs the driver on the head. A local runtime of
   somebody else (a `ray.init()` in another process) is never joined: Ray's own
   `address="auto"` would join any GCS it finds on the machine.
3. Else a local runtime in a temp dir of its own, removed afterwards (`make demo`, tests).

Before the first trial the driver prints which one, with the cluster's nodes, CPUs and GPUs,
and stops with one line (exit 2) when no node the cluster has, or can add, holds one trial.

Before Ray is started or joined, what the environment points it at is checked: one line
and exit 2 (3: a full disk under the temp dir) for a problem (study.tuning.ray_env's
ray_problems, which `study validate` runs too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ray
import yaml

from study.config.schema import StudyConfig
from study.errors import ConfigError
from study.tuning.ray_env import (  # noqa: F401  (started_cluster_address: re-exported)
    LOCAL_PREFIX,
    check_ray_environment,
    ray_tmpdir,
    started_cluster_address,
)

# What `ray up` leaves on the head: the cluster file, filled in (node types included).
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


class ClusterTooSmall(ConfigError):
    """No node of the cluster, present or addable, can hold one trial of the study."""


@dataclass(frozen=True)
class Runtime:
    how: str  # one line: which cluster, found how
    joined: bool  # False for a local runtime this driver started


@contextlib.contextmanager
def ray_runtime(config: StudyConfig, log=print):
    """Connect to where the trials run (see the module's docstring); yields a Runtime."""
    if ray.is_initialized():  # a caller (a test, a notebook) set Ray up already
        yield Runtime("the Ray runtime this process already had", joined=True)
        return
    check_ray_environment()  # a full disk under the temp dir: exit 3 from `study run`
    address = os.environ.get("RAY_ADDRESS", "")
    if address and address != "local":
        runtime = Runtime(f"joined the Ray cluster at {address} (RAY_ADDRESS)", joined=True)
    elif not address and (address := started_cluster_address()) is not None:
        # "auto", not the address itself: only then does Ray pick up the cluster's auth
        # token (~/.ray/auth_token) the way `ray start` did.
        runtime = Runtime(f"joined the Ray cluster `ray start` made here, at {address}", True)
        address = "auto"
    else:  # RAY_ADDRESS=local too: a new local runtime, Ray's meaning of it
        with local_ray(config.resources.num_cpus, ray_tmpdir()):
            runtime = Runtime("started a local Ray runtime", joined=False)
            _announce(runtime, config, log)
            yield runtime
        return
    _join(address)
    try:
        _announce(runtime, config, log)
        yield runtime
    finally:
        ray.shutdown()


def _join(address: str) -> None:
    try:  # Ray's INFO lines about connecting would repeat what _announce says
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as error:  # ConnectionError, a Ray version mismatch, ...: the cluster's
        ray.shutdown()  # whatever half of the connection was made
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"cannot join the Ray cluster at {address}: {reason}") from error
    keep_signal_handlers()


def _announce(runtime: Runtime, config: StudyConfig, log) -> None:
    nodes = alive_nodes()
    cpus = sum(n.get("CPU", 0) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    log(f"ray: {runtime.how}: {len(nodes)} node(s), {cpus:g} CPUs, {gpus:g} GPUs")
    check_trial_fits(config, nodes, addable_node_types() if runtime.joined else [])


def alive_nodes() -> list[dict]:
    """Each live node's resources (CPU, GPU, memory, ...)."""
    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


def addable_node_types(path: Path = BOOTSTRAP_CONFIG) -> list[dict]:
    """Resources of the node types the autoscaler may add (from the cluster file `ray up`
    left on the head), {} for a type whose resources Ray detects when it starts; [] when
    this is not a head started by `ray up`."""
    path = path.expanduser()
    if not path.is_file():
        return []
    try:
        cluster = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    types = cluster.get("available_node_types") or {}
    return [
        dict(node.get("resources") or {})
        for node in types.values()
        if isinstance(node, dict) and node.get("max_workers", 1) != 0
    ]


def trial_fits(resources: dict, config: StudyConfig) -> bool:
    """Whether a node with `resources` (Ray's names: CPU, GPU) holds one trial of the study
    (`resources.cpu_per_trial`, `resources.gpu_per_trial`)."""
    cpu, gpu = config.resources.cpu_per_trial, config.resources.gpu_per_trial
    return resources.get("CPU", 0) >= cpu and resources.get("GPU", 0) >= gpu


def node_type_fits(resources: dict, config: StudyConfig) -> bool:
    """Whether nodes of a type the autoscaler can add, declared with `resources`, hold one
    trial; a type that leaves its resources to Ray's detection (`{}`) might, and is given
    the benefit of the doubt."""
    return not resources or trial_fits(resources, config)


def check_trial_fits(config: StudyConfig, nodes: list[dict], node_types: list[dict]) -> None:
    """Raise ClusterTooSmall when no live node and no addable node type holds one trial: its
    trials would wait forever. A node type with undeclared resources might."""
    cpu, gpu = config.resources.cpu_per_trial, config.resources.gpu_per_trial
    if any(trial_fits(node, config) for node in nodes):
        return
    if any(node_type_fits(resources, config) for resources in node_types):
        return
    have = ", ".join(f"{node.get('CPU', 0):g} CPU {node.get('GPU', 0):g} GPU" for node in nodes)
    addable = ", ".join(str(r) for r in node_types) or "none"
    raise ClusterTooSmall(
        f"no node of the Ray cluster can hold one trial (resources.cpu_per_trial {cpu:g}, "
        f"resources.gpu_per_trial {gpu:g}): its nodes have {have or 'nothing'}; node types "
        f"it can add: {addable}"
    )


def keep_signal_handlers() -> None:
    """ray.init installs a SIGTERM handler that aborts the driver (no cleanup): put back
    the driver's own (study.stores.signals.interruptible), when it has one."""
    from study.stores.signals import reinstall_handlers

    reinstall_handlers()


@contextlib.contextmanager
def local_ray(num_cpus: int | None, parent: str = "/tmp", prefix: str = LOCAL_PREFIX):
    """A local Ray runtime in a temp dir of its own, which is removed afterwards (only
    that one: never a Ray folder somebody else created)."""
    temp_dir = tempfile.mkdtemp(prefix=prefix, dir=os.path.abspath(parent))
    # Ray 2.60 turns token auth on for a new local runtime (good) and warns about it on
    # stderr at every start (noise in every study's output).
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    ray.init(
        num_cpus=num_cpus,
        _temp_dir=temp_dir,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    keep_signal_handlers()
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
