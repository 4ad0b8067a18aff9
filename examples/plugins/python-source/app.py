"""A mecha source plugin for an uptime monitor's alert webhook.

The monitor POSTs one JSON object per alert, for example:

    {"type": "monitor.down", "alert_id": "alrt_7f3c9a1e", "monitor": "api-health",
     "url": "https://api.example.com/healthz", "status_code": 503, ...}

and each alert becomes one mecha event: its type from "type", the monitor as the subject, the
check that fired as the actor, and the details as attrs that worker rules can filter on and
prompts can print.
"""

import itertools
import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.source_api import Outcome, Outcome_Events
from wit_world.imports import log
# In the `source` world this module is `mecha_plugin_types`, not `types`: the world also
# imports `wasi:http/types`, so componentize-py qualifies both names.
from wit_world.imports.mecha_plugin_types import (
    Attr,
    Error_BadRequest,
    Event,
    PluginInfo,
    Request,
    Value,
    Value_Boolean,
    Value_Float,
    Value_Integer,
    Value_Text,
)

# Used when an alert carries no "type".
DEFAULT_TYPE = "alert"

# Fields copied into attrs when present with a scalar value. The others (the whole payload)
# stay in the raw body, which mecha stores with the event.
ATTR_FIELDS = ("url", "status_code", "response_time_ms", "region", "escalated", "message")

# The range of the WIT `s64` an integer attr is carried in.
S64_MIN, S64_MAX = -(2**63), 2**63 - 1

# CPython's JSON parser recurses in C once per level of nesting. Inside WebAssembly, a couple
# of thousand levels exhaust the call stack, which traps the plugin (the sender gets a 500)
# instead of raising an exception. Real alerts are a few levels deep, so deeper bodies are
# refused before parsing.
MAX_DEPTH = 32
# A JSON string, removed before counting so that brackets inside strings do not count.
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# For bytes.translate: keeps only brackets, as the signed bytes +1 (opening) and -1 (closing).
BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
NOT_BRACKETS = bytes(set(range(256)) - set(b"[{]}"))


class SourceApi(exports.SourceApi):
    """The `source-api` export: componentize-py looks for a class of this name in `app`."""

    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="python-source",
            version="0.1.0",
            summary="Uptime monitor alerts (JSON webhook), written in Python",
            secrets=[],
            settings=[],
            hosts=[],
        )

    def handle_webhook(self, request: Request) -> Outcome:
        # A WIT `result<_, error>` is returned by raising `Err(<error case>)`; the host
        # answers `bad-request` with 400 and shows the message to the sender.
        if too_deep(request.body):
            raise Err(Error_BadRequest(f"body is nested more than {MAX_DEPTH} levels deep"))
        try:
            alert = json.loads(request.body)
        except ValueError as err:  # invalid JSON, or text that is not UTF-8
            raise Err(Error_BadRequest(f"body is not valid JSON: {err}"))
        if not isinstance(alert, dict):
            raise Err(Error_BadRequest(f"body must be a JSON object, got {json_kind(alert)}"))

        event_type = alert.get("type", DEFAULT_TYPE)
        if not isinstance(event_type, str) or not event_type.strip():
            raise Err(Error_BadRequest('"type" must be a non-empty string'))

        attrs = []
        for name in ATTR_FIELDS:
            value = to_value(alert.get(name))
            if value is not None:
                attrs.append(Attr(name=name, value=value))

        event = Event(
            event_type=event_type,
            # The monitor's alert id: a redelivered alert is then stored only once.
            delivery_id=text_field(alert, "alert_id") or None,
            dedup_key=None,
            actor=text_field(alert, "triggered_by"),
            subject=text_field(alert, "monitor"),
            attrs=attrs,
        )
        log.emit(
            log.Level.DEBUG,
            "alert parsed",
            [
                log.Field(key="type", value=event_type),
                log.Field(key="attrs", value=str(len(attrs))),
            ],
        )
        return Outcome_Events([event])

    def hydrate(self, event: Event) -> Event:
        # The monitor's webhook already says everything this plugin knows.
        return event


def too_deep(body: bytes) -> bool:
    """Whether the arrays and objects of a JSON text nest more than MAX_DEPTH levels."""
    # Counting is fast, and a body with few brackets cannot nest deeply: most alerts stop here.
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    # The running sum of the bracket steps is the depth. translate, accumulate and max loop
    # in C: a loop in Python over a body of a million brackets would take seconds.
    steps = JSON_STRING.sub(b"", body).translate(BRACKET_STEPS, NOT_BRACKETS)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0) > MAX_DEPTH


def text_field(alert: dict, name: str) -> str:
    """The field `name` when it is a string, else "" (the WIT's "unknown")."""
    value = alert.get(name)
    return value if isinstance(value, str) else ""


def to_value(value) -> Value | None:
    """A JSON scalar as an attr value; None for null, objects, lists and out-of-range numbers."""
    # bool first: in Python, True is also an int.
    if isinstance(value, bool):
        return Value_Boolean(value)
    if isinstance(value, int):
        return Value_Integer(value) if S64_MIN <= value <= S64_MAX else None
    if isinstance(value, float):
        return Value_Float(value)
    if isinstance(value, str):
        return Value_Text(value)
    return None


def json_kind(value) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"
