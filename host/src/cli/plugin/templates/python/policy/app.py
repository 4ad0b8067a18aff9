"""{{name}}: a mecha policy plugin. It decides which of a worker's proposed actions go out.

The rules are the worker's policy configuration, as JSON (see fixtures/rules.json):

    {"max_length": 2000, "allowed_labels": ["bug", "enhancement"]}

A comment longer than `max_length` characters is denied; a label (added or removed) that
`allowed_labels` does not list is denied, the others go through. A rule left out allows
everything it would judge. `status`, `commit` and `metadata` pass unjudged, and `output` is free
text, not an action: it always passes. Rules that are not valid deny every action.

A policy must decide the same way every time: it has no network, its clock is stopped at the
Unix epoch and its randomness is seeded.

The bindings (`wit_world`) are generated from wit/ by componentize-py when it builds the
component; `componentize-py -d wit -w policy bindings bindings/` writes them out to read.
"""

import json
from dataclasses import dataclass
from typing import List, Optional, Tuple

from wit_world import exports
from wit_world.imports.types import (
    Comment,
    Decision,
    Labels,
    PluginInfo,
    StoredEvent,
    TaskResult,
    Verdict,
)


class PolicyApi(exports.PolicyApi):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="{{name}}",
            version="0.1.0",
            summary="Limits comment length and the labels a worker may set",
            secrets=[],
            settings=[],
            hosts=[],
        )

    def evaluate(
        self, event: StoredEvent, proposed: TaskResult, rules: str
    ) -> Tuple[TaskResult, Decision]:
        return evaluate(proposed, rules)


@dataclass
class Rules:
    """What the worker's policy configuration says."""

    # The longest comment allowed, in characters.
    max_length: Optional[int] = None
    # The only labels that may be added or removed (compared case-insensitively).
    allowed_labels: Optional[List[str]] = None


def parse_rules(text: str) -> Rules:
    """Reads the rules; `null` (a worker that gave no configuration) is no rules. Raises
    ValueError, saying why, for rules that are not valid."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ValueError(f"the rules are not JSON: {err}")
    if value is None:
        return Rules()
    if not isinstance(value, dict):
        raise ValueError("the rules must be a JSON object")
    rules = Rules()
    max_length = value.get("max_length")
    if max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
            raise ValueError("max_length must be a whole number")
        rules.max_length = max_length
    allowed_labels = value.get("allowed_labels")
    if allowed_labels is not None:
        if not isinstance(allowed_labels, list) or not all(
            isinstance(label, str) for label in allowed_labels
        ):
            raise ValueError("allowed_labels must be a list of strings")
        rules.allowed_labels = allowed_labels
    return rules


def evaluate(proposed: TaskResult, text: str) -> Tuple[TaskResult, Decision]:
    """`proposed` with the denied actions removed, and the verdicts saying why."""
    decision = Decision(allowed=[], denied=[])
    try:
        rules = parse_rules(text)
    except ValueError as err:
        return deny_all(proposed, str(err), decision), decision
    result = TaskResult(
        output=proposed.output,
        comment=judge_comment(proposed.comment, rules.max_length, decision),
        labels=judge_labels(proposed.labels, rules.allowed_labels, decision),
        status=unjudged("status", proposed.status, decision),
        commit=unjudged("commit", proposed.commit, decision),
        metadata=unjudged("metadata", proposed.metadata, decision),
    )
    return result, decision


def deny_all(proposed: TaskResult, why: str, decision: Decision) -> TaskResult:
    """Invalid rules: only `output` passes, every action proposed is denied with the reason."""
    for action in ("comment", "labels", "status", "commit", "metadata"):
        if getattr(proposed, action) is not None:
            decision.denied.append(Verdict(action, f"{action}: denied, invalid rules: {why}"))
    return TaskResult(
        output=proposed.output,
        comment=None,
        labels=None,
        status=None,
        commit=None,
        metadata=None,
    )


def judge_comment(
    comment: Optional[Comment], max_length: Optional[int], decision: Decision
) -> Optional[Comment]:
    if comment is None:
        return None
    if max_length is None:
        decision.allowed.append(Verdict("comment", "comment: no max_length rule"))
        return comment
    length = len(comment.body)
    if length > max_length:
        decision.denied.append(
            Verdict("comment", f"comment: {length} characters, over max_length {max_length}")
        )
        return None
    decision.allowed.append(
        Verdict("comment", f"comment: {length} characters, within max_length {max_length}")
    )
    return comment


def judge_labels(
    labels: Optional[Labels], allowed_labels: Optional[List[str]], decision: Decision
) -> Optional[Labels]:
    if labels is None:
        return None
    if allowed_labels is None:
        decision.allowed.append(Verdict("labels", "labels: no allowed_labels rule"))
        return labels
    allowed = {label.lower() for label in allowed_labels}

    def keep(change: str, label: str) -> bool:
        if label.lower() in allowed:
            decision.allowed.append(
                Verdict("labels", f'labels: {change} "{label}" (in allowed_labels)')
            )
            return True
        decision.denied.append(
            Verdict("labels", f'labels: {change} "{label}" denied, not in allowed_labels')
        )
        return False

    add = [label for label in labels.add if keep("add", label)]
    remove = [label for label in labels.remove if keep("remove", label)]
    if not add and not remove:
        return None
    return Labels(add=add, remove=remove)


def unjudged(action: str, proposed, decision: Decision):
    """An action this policy has no rule for: it passes."""
    if proposed is not None:
        decision.allowed.append(Verdict(action, f"{action}: not judged by this policy"))
    return proposed
