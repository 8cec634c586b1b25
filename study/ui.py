"""`study ui [--port N]`: the MLflow UI on 127.0.0.1 over the study's store.

What it shows where is README's "The MLflow UI"; the run and experiment descriptions it
shows are study.descriptions'.
"""

from __future__ import annotations

import argparse
import socket
import subprocess

UI_HOST = "127.0.0.1"  # the UI shows every run and artifact: never on other interfaces


def ui_command(tracking_uri: str) -> str:
    from study.stores import redact

    return f"mlflow ui --backend-store-uri {redact(tracking_uri)} --host {UI_HOST}"


def port_problem(port: int) -> str | None:
    """Why the UI cannot listen on `port` of 127.0.0.1 (None: it can). Checked before the
    UI starts, because MLflow's own message for a taken port is buried in a traceback."""
    if not 1 <= port <= 65535:
        return f"--port {port}: a port is 1..65535"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a server binds: a port left in TIME_WAIT by an earlier UI is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((UI_HOST, port))
        except OSError as error:
            return (
                f"port {port} on {UI_HOST} is in use ({error.strerror}); "
                f"pass a free one: study ui --port {port + 1}"
            )
    return None


def cmd_ui(args) -> int:
    from study.cli import BadInput

    problem = port_problem(args.port)
    if problem:
        raise BadInput(problem)
    command = ui_command(args.tracking_uri).split() + ["--port", str(args.port)]
    print(" ".join(command), flush=True)
    print(f"MLflow UI: http://{UI_HOST}:{args.port} (Ctrl-C stops it)", flush=True)
    return subprocess.call(command)


def add_parser(subparsers: argparse._SubParsersAction, tracking_uri: str) -> None:
    parser = subparsers.add_parser("ui", help="open the MLflow UI on the study store (127.0.0.1)")
    parser.add_argument("--tracking-uri", default=tracking_uri)
    parser.add_argument("--port", type=int, default=5000)
    parser.set_defaults(func=cmd_ui)
