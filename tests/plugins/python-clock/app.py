"""python-clock: a policy that reports the clock and the randomness it sees.

`evaluate` lets the proposed result through unchanged, with one allowed verdict (action
`probe`) whose reason is `clock=<int(time.time())> random=<random.random()>`. The host fixes a
policy's wall clock at the Unix epoch and seeds its randomness, so a test can assert
`clock=0` and the same `random=` on every call.
"""

import random
import time

from wit_world import exports
from wit_world.imports.types import Decision, PluginInfo, StoredEvent, TaskResult, Verdict


class PolicyApi(exports.PolicyApi):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="python-clock",
            version="0.1.0",
            summary="Test probe: reports a policy's clock and randomness",
            secrets=[],
            settings=[],
            hosts=[],
        )

    def evaluate(
        self, event: StoredEvent, proposed: TaskResult, rules: str
    ) -> tuple[TaskResult, Decision]:
        # Read at call time: module-level code runs once, when the component is built.
        reason = f"clock={int(time.time())} random={random.random()}"
        return proposed, Decision(allowed=[Verdict(action="probe", reason=reason)], denied=[])
