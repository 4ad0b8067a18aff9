"""python-probe: a source that reports what the sandbox lets a Python plugin reach.

For every request it returns one event of type `probe` whose attrs say what each attempt gave:

- `file`: "opened", or "denied: <exception class>", for open("/etc/hostname");
- `dir`: "listed <n> entries", or "denied: <exception class>", for os.listdir("/");
- `socket`: "connected", or "denied: <exception class>", for a TCP connection to
  127.0.0.1:<port>, the port from the body's JSON field "port";
- `env`: len(os.environ); `args`: len(sys.argv);
- `stdin`: what sys.stdin.read() returned, or "denied: <exception class>";
- `clock`: int(time.time());
- `<name>_detail`: the exception's message, for each attempt that was denied.

It also writes one line to stdout and one to stderr, which the host copies into its log.
"""

import json
import os
import sys
import time

# Imported when the component is built: componentize-py snapshots the interpreter after
# importing `app`, and a module first imported during a call is not found.
try:
    import socket
except ImportError as err:
    socket = None
    SOCKET_IMPORT_ERROR = err

from wit_world import exports
from wit_world.exports.source_api import Outcome, Outcome_Events
from wit_world.imports.mecha_plugin_types import (
    Attr,
    Event,
    PluginInfo,
    Request,
    Value_Integer,
    Value_Text,
)


class SourceApi(exports.SourceApi):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="python-probe",
            version="0.1.0",
            summary="Test probe: reports what the sandbox allows a Python plugin",
            secrets=[],
            settings=[],
            hosts=[],
        )

    def handle_webhook(self, request: Request) -> Outcome:
        # Flushed explicitly: the interpreter never exits between calls, so nothing else
        # would flush a buffered stdout.
        print("probe stdout line", flush=True)
        print("probe stderr line", file=sys.stderr, flush=True)

        attrs = []

        def attempt(name: str, action) -> None:
            try:
                attrs.append(Attr(name=name, value=Value_Text(action())))
            except BaseException as err:  # noqa: BLE001 - every failure is the answer
                attrs.append(Attr(name=name, value=Value_Text(f"denied: {type(err).__name__}")))
                attrs.append(Attr(name=f"{name}_detail", value=Value_Text(str(err))))

        attempt("file", open_file)
        attempt("dir", list_root)
        attempt("socket", lambda: connect(port_of(request.body)))
        attempt("stdin", lambda: sys.stdin.read())
        attrs.append(Attr(name="env", value=Value_Integer(len(os.environ))))
        attrs.append(Attr(name="args", value=Value_Integer(len(sys.argv))))
        attrs.append(Attr(name="clock", value=Value_Integer(int(time.time()))))

        event = Event(
            event_type="probe",
            delivery_id=None,
            dedup_key=None,
            actor="",
            subject="",
            attrs=attrs,
        )
        return Outcome_Events([event])

    def hydrate(self, event: Event) -> Event:
        return event


def open_file() -> str:
    with open("/etc/hostname") as file:
        file.read()
    return "opened"


def list_root() -> str:
    return f"listed {len(os.listdir('/'))} entries"


def port_of(body: bytes) -> int:
    try:
        port = json.loads(body).get("port")
    except (ValueError, AttributeError):
        port = None
    return port if isinstance(port, int) else 1


def connect(port: int) -> str:
    if socket is None:
        # The WASI build of CPython has no usable socket module: that is the answer.
        raise SOCKET_IMPORT_ERROR
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))
    return "connected"
