"""{{name}}: a mecha source plugin. It turns a JSON webhook into one event.

The body it accepts (see fixtures/request.json):

    {"type": "ticket.opened", "id": "delivery-1", "actor": "octocat",
     "subject": "acme/widgets", "attrs": {"number": 7, "urgent": true}}

`type` is required; `id` becomes the delivery id (a redelivery is then stored once); `attrs`
holds strings, numbers and booleans for workers' filters and prompt templates.

The bindings (`wit_world`) are generated from wit/ by componentize-py when it builds the
component; `componentize-py -d wit -w source bindings bindings/` writes them out to read.
"""

import json
from typing import List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.source_api import Outcome, Outcome_Events
from wit_world.imports import log
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


class SourceApi(exports.SourceApi):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            summary="Turns a JSON webhook into an event",
            # To check signatures, name a secret here (e.g. "webhook_secret") and call
            # wit_world.imports.verify.hmac_sha256("webhook_secret", request.body, signature):
            # the host compares with the operator's value, which never enters the plugin.
            secrets=[],
            # Settings read with wit_world.imports.config.get.
            settings=[],
            # Origins called with outgoing HTTP (from hydrate), e.g. "https://api.example.com".
            hosts=[],
        )

    def handle_webhook(self, request: Request) -> Outcome:
        event = parse(request)
        log.emit(log.Level.DEBUG, "webhook parsed", [log.Field("type", event.event_type)])
        return Outcome_Events([event])

    def hydrate(self, event: Event) -> Event:
        # Nothing to add: a source that fetches more from its provider's API (e.g. a diff) does
        # it here, with wasi:http/outgoing-handler.
        return event


def bad_request(message: str) -> Err:
    """The error for a malformed request; its message is shown to the sender."""
    return Err(Error_BadRequest(message))


def parse(request: Request) -> Event:
    """The event of one webhook request; raises a bad-request for anything malformed."""
    content_type = header(request, "content-type")
    if content_type is not None and not content_type.lower().startswith("application/json"):
        raise bad_request(f"expected Content-Type application/json, got {content_type}")
    try:
        body = json.loads(request.body)
    except ValueError as err:
        raise bad_request(f"the body is not JSON: {err}")
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    event_type = body.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise bad_request("the body has no `type` string")
    attrs: List[Attr] = []
    raw_attrs = body.get("attrs")
    if raw_attrs is not None:
        if not isinstance(raw_attrs, dict):
            raise bad_request("`attrs` must be a JSON object")
        for name, raw in raw_attrs.items():
            value = scalar(raw)
            if value is None:
                raise bad_request(f"attrs.{name} must be a string, a number or a boolean")
            attrs.append(Attr(name, value))
    return Event(
        event_type=event_type.strip(),
        delivery_id=text(body, "id"),
        dedup_key=None,
        actor=text(body, "actor") or "",
        subject=text(body, "subject") or "",
        attrs=attrs,
    )


def header(request: Request, name: str) -> Optional[str]:
    """The first value of the header `name` (the host gives names in lower case)."""
    for entry in request.headers:
        if entry.name.lower() == name:
            return entry.value
    return None


def text(body: dict, key: str) -> Optional[str]:
    value = body.get(key)
    return value if isinstance(value, str) else None


def scalar(value: object) -> Optional[Value]:
    """A JSON scalar as an attribute value; None for null, lists and objects."""
    if isinstance(value, bool):
        return Value_Boolean(value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return Value_Integer(value)
    if isinstance(value, (int, float)):
        return Value_Float(float(value))
    if isinstance(value, str):
        return Value_Text(value)
    return None
