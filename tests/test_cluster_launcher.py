"""The launcher path as a user runs it: `ray up cluster.local.yaml`, then `ray submit
cluster.local.yaml study/run.py -- --preset smoke`, with the head at 127.0.0.1 reached over
SSH (a throw-away key, and a throw-away user that exists only in the test's namespaces).

Everything runs in PID, mount and network namespaces of the test's own: the launcher's
`ray stop` and `ray down` see only the test's processes, sshd and the MLflow server listen
on a loopback nobody else shares, and the user is in a copy of /etc/passwd bind-mounted
there. The user has uid 0 so that it can use the venv the tests run in wherever CI cloned
the project; the cluster file's `pip install` is left out for the same reason (it would
install into that venv), the rest of cluster.local.yaml runs as written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from study.tracking import client as t
from tests.conftest import ROOT
from tests.namespace import VENV_BIN, clean_env, needs_namespaces, run_in_namespace
from tests.test_cluster_join import NODES_PY

USER = "studyci"
needs_ssh = pytest.mark.skipif(
    not Path("/usr/sbin/sshd").exists()
    or not all(shutil.which(tool) for tool in ("ssh", "rsync", "curl", "ip", "ss")),
    reason="needs openssh-server, rsync, curl and iproute2 (.ci/run installs them)",
)
pytestmark = [pytest.mark.ray, pytest.mark.slow, needs_namespaces, needs_ssh]

SSHD_CONFIG = """Port 22
ListenAddress 127.0.0.1
HostKey {T}/hostkey
PidFile {T}/sshd.pid
AuthorizedKeysFile {T}/authorized_keys
AllowUsers {user}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
"""

SCRIPT = """
T="$PWD"
cp /etc/passwd passwd && echo "$STUDY_CI_USER:x:0:0:study ci:$T/home:/bin/bash" >> passwd
mount --bind passwd /etc/passwd
ssh-keygen -q -t ed25519 -N '' -f hostkey && ssh-keygen -q -t ed25519 -N '' -f key
cp key.pub authorized_keys && chmod 600 authorized_keys key
mkdir -p /run/sshd && /usr/sbin/sshd -f sshd_config -E sshd.log
step() {  # name, command...: its output in NAME.log, its exit code in NAME.rc
  local name=$1; shift
  ("$@" > "$T/$name.log" 2>&1; echo $? > "$T/$name.rc") || true
}
cd "$REPO"
step up ray up -y --no-config-cache "$T/cluster.yaml"
step submit ray submit --no-config-cache "$T/cluster.yaml" study/run.py -- --preset smoke
(HOME="$T/home" python "$T/nodes.py" 1 > "$T/nodes.json") || true
ssh -i "$T/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -N \
  -L 15000:127.0.0.1:5000 "$STUDY_CI_USER@127.0.0.1" 2> "$T/forward.log" &
for _ in $(seq 60); do
  curl -sf http://127.0.0.1:15000/health > "$T/health.txt" 2>/dev/null && break; sleep 1
done
ss -ltn > "$T/listening.txt"
step down ray down -y "$T/cluster.yaml"
"""


def cluster_file(root: Path) -> dict:
    """cluster.local.yaml with this machine as the head, and this venv as its installation."""
    cluster = yaml.safe_load((ROOT / "cluster.local.yaml").read_text())
    cluster["cluster_name"] = f"study-ci-{os.getpid()}"
    cluster["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    cluster["auth"] = {"ssh_user": USER, "ssh_private_key": str(root / "key")}
    cluster["file_mounts"] = {"~/transfer-study": str(ROOT), "~/.study.env": str(root / "env")}
    node_env = (
        f"export PATH={VENV_BIN}:$PATH PYTHONPATH=$HOME/transfer-study "
        f"RAY_TMPDIR={root / 'ray'} RAY_USAGE_STATS_ENABLED=0"
    )
    cluster["setup_commands"] = [f"echo '{node_env}' >> ~/.bashrc"] + [
        command
        for command in cluster["setup_commands"]
        if "pip install" not in command and "torchvision" not in command
    ]
    cluster["head_start_ray_commands"] = [
        command.replace("ray start --head", "ray start --head --node-ip-address=127.0.0.1")
        for command in cluster["head_start_ray_commands"]
    ]
    return cluster


@pytest.fixture(scope="module")
def launched():
    root = Path(tempfile.mkdtemp(prefix="rl-", dir="/tmp"))  # short: Ray's socket paths
    # Ray's SSH control sockets go to /tmp/ray_ssh_<hash of the login name>: a name of the
    # test's own makes that folder ours to remove.
    login = f"study-ci-{os.getpid()}"
    control = None
    try:
        for folder in ("home", "ray", "tmp"):
            (root / folder).mkdir()
        (root / "env").write_text("")
        (root / "nodes.py").write_text(NODES_PY)
        (root / "sshd_config").write_text(SSHD_CONFIG.format(T=root, user=USER))
        (root / "cluster.yaml").write_text(yaml.safe_dump(cluster_file(root)))
        env = clean_env(
            HOME=str(root / "home"),
            RAY_TMPDIR=str(root / "ray"),
            TMPDIR=str(root / "tmp"),
            LOGNAME=login,
            USER=login,
            REPO=str(ROOT),
            STUDY_CI_USER=USER,
        )
        control = Path("/tmp") / f"ray_ssh_{hashlib.sha256(login.encode()).hexdigest()[:10]}"
        done = run_in_namespace(SCRIPT, root, env, timeout=1200, net=True)
        assert done.returncode == 0, done.stdout + done.stderr
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if control is not None:
            shutil.rmtree(control, ignore_errors=True)


def _step(root: Path, name: str) -> tuple[int, str]:
    rc = root / f"{name}.rc"
    return int(rc.read_text()) if rc.exists() else -1, (root / f"{name}.log").read_text()


def test_ray_up_then_submit_runs_the_study_on_the_cluster(launched):
    rc, out = _step(launched, "up")
    assert rc == 0, out[-4000:]
    rc, out = _step(launched, "submit")
    assert rc == 0, out[-4000:]
    assert "ray: joined the Ray cluster `ray start` made here" in out
    assert "Best freeze strategy per target dataset size" in out
    nodes = set(json.loads((launched / "nodes.json").read_text()))
    client = MlflowClient(tracking_uri=f"sqlite:///{launched / 'home' / 'mlflow.db'}")
    parent = t.latest_study_run(client, t.experiment_ids(client, "smoke"))
    assert parent is not None and parent.info.status == "FINISHED"
    children = t.child_runs(client, parent.info.run_id)
    assert children and {run.data.tags[t.TAG_NODE_ID] for run in children} <= nodes
    rc, out = _step(launched, "down")
    assert rc == 0, out[-4000:]


def test_the_mlflow_server_on_the_head_answers_through_a_port_forward_only(launched):
    assert (launched / "health.txt").read_text().strip() == "OK"
    listening = (launched / "listening.txt").read_text()
    assert "127.0.0.1:5000" in listening
    assert "0.0.0.0:5000" not in listening and "*:5000" not in listening
