"""{{name}}: a mecha trigger plugin. Each tick of a schedule becomes one event.

The operator declares the schedules (their names and times) in the daemon's configuration; the
host keeps the time and calls handle_tick when one is due. The event is of type `tick`, its
actor is the schedule's name (so workers can pick their schedules) and its subject the plugin's
`subject` setting (e.g. the repository a nightly review is about).

The bindings (`wit_world`) are generated from wit/ by componentize-py when it builds the
component; `componentize-py -d wit -w trigger bindings bindings/` writes them out to read.
"""

from typing import List

from wit_world import exports
from wit_world.exports.trigger_api import Tick
from wit_world.imports import config
from wit_world.imports.mecha_plugin_types import (
    Attr,
    Event,
    PluginInfo,
    Value_Integer,
    Value_Text,
)


class TriggerApi(exports.TriggerApi):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            summary="One event per tick of a schedule",
            secrets=[],
            # Read with config.get, from plugins.{{name}}.settings in config.yml.
            settings=["subject"],
            # Origins called with outgoing HTTP, e.g. "https://api.example.com".
            hosts=[],
        )

    def handle_tick(self, tick: Tick) -> List[Event]:
        return [tick_event(tick, config.get("subject") or "")]


def tick_event(tick: Tick, subject: str) -> Event:
    """The event of one tick. Its delivery id is the schedule and due time, so a tick delivered
    twice is stored once."""
    return Event(
        event_type="tick",
        delivery_id=f"{tick.schedule}:{tick.due_at}",
        dedup_key=None,
        actor=tick.schedule,
        subject=subject,
        attrs=[
            Attr("schedule", Value_Text(tick.schedule)),
            Attr("due_at", Value_Integer(min(tick.due_at, 2**63 - 1))),
        ],
    )
