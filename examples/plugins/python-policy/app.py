"""A mecha policy plugin: a label allowlist and a forbidden-words filter for comments.

The operator configures it per worker, e.g.

    policy:
      - plugin: python-policy
        config:
          allowed_labels: [bug, security, needs-triage]
          forbidden_words: [password, "internal only"]

and receives that `config` as the JSON text `rules`. For each result a worker proposes:

- labels: labels outside `allowed_labels` are dropped from both `add` and `remove`
  (compared case-insensitively); with no `allowed_labels`, every label passes;
- comment: a comment containing one of `forbidden_words` (as a whole word or phrase, in any
  case) is refused. So is the free-text `output` when it contains one, since a responder posts
  the output as the comment when there is no comment;
- status, commit and metadata pass unchanged: chain this policy with the bundled `rules`
  policy to judge those.

Rules that are not a JSON object of that shape deny everything, output included: a policy that
cannot read its rules must not let through what they were meant to stop.

The decision depends on nothing but the arguments, so the same input always gives the same
decision, as the host requires of policies.
"""

import json
import re

from wit_world import exports
from wit_world.imports import log
from wit_world.imports.types import (
    Comment,
    Decision,
    Labels,
    PluginInfo,
    StoredEvent,
    TaskResult,
    Verdict,
)


class InvalidRules(Exception):
    """The rules are not what this policy understands."""


class PolicyApi(exports.PolicyApi):
    """The `policy-api` export: componentize-py looks for a class of this name in `app`."""

    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="python-policy",
            version="0.1.0",
            summary="Keeps labels to an allowlist and refuses comments with forbidden words",
            secrets=[],
            settings=[],
            hosts=[],
        )

    def evaluate(
        self, event: StoredEvent, proposed: TaskResult, rules: str
    ) -> tuple[TaskResult, Decision]:
        decision = Decision(allowed=[], denied=[])
        try:
            allowed_labels, forbidden = parse_rules(rules)
        except InvalidRules as err:
            return deny_all(proposed, decision, f"invalid policy rules: {err}")

        result = TaskResult(
            output=judge_text("output", proposed.output, forbidden, decision),
            comment=judge_comment(proposed.comment, forbidden, decision),
            labels=judge_labels(proposed.labels, allowed_labels, decision),
            status=proposed.status,
            commit=proposed.commit,
            metadata=proposed.metadata,
        )
        for action in ("status", "commit", "metadata"):
            if getattr(proposed, action) is not None:
                decision.allowed.append(Verdict(action=action, reason=f"{action}: no rule"))
        if decision.denied:
            log.emit(
                log.Level.INFO,
                "policy denied part of a result",
                [
                    log.Field(key="event", value=event.id),
                    log.Field(key="denied", value="; ".join(v.reason for v in decision.denied)),
                ],
            )
        return result, decision


def parse_rules(rules: str) -> tuple[set[str] | None, list[str]]:
    """The casefolded label allowlist (None: no allowlist) and the forbidden words."""
    try:
        parsed = json.loads(rules) if rules.strip() else None
    except ValueError as err:
        raise InvalidRules(f"not JSON ({err})")
    if parsed is None:
        # A step with no `config:` arrives as `null`: no rules, nothing restricted.
        parsed = {}
    if not isinstance(parsed, dict):
        raise InvalidRules("not a JSON object")
    unknown = sorted(set(parsed) - {"allowed_labels", "forbidden_words"})
    if unknown:
        # A misspelt key would otherwise silently switch a rule off.
        raise InvalidRules(f"unknown key {unknown[0]!r}")
    labels = parsed.get("allowed_labels")
    words = parsed.get("forbidden_words", [])
    if labels is not None and not is_string_list(labels):
        raise InvalidRules("allowed_labels must be a list of strings")
    if not is_string_list(words):
        raise InvalidRules("forbidden_words must be a list of strings")
    allowed = None if labels is None else {label.casefold() for label in labels}
    return allowed, [word for word in words if word.strip()]


def is_string_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def forbidden_word_in(text: str, forbidden: list[str]) -> str | None:
    """The first forbidden word or phrase that `text` contains as a whole word, in any case."""
    for word in forbidden:
        # Not inside another word: "pass" does not match "passing".
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE):
            return word
    return None


def judge_text(
    what: str, text: str | None, forbidden: list[str], decision: Decision
) -> str | None:
    """`text` (the comment body or the output), or None when it contains a forbidden word."""
    if text is None:
        return None
    word = forbidden_word_in(text, forbidden)
    if word is None:
        return text
    # Both texts end up as the comment, so both are judged as the `comment` action.
    decision.denied.append(
        Verdict(action="comment", reason=f"{what}: contains forbidden word {word!r}")
    )
    return None


def judge_comment(
    comment: Comment | None, forbidden: list[str], decision: Decision
) -> Comment | None:
    if comment is None:
        return None
    if judge_text("comment", comment.body, forbidden, decision) is None:
        return None
    decision.allowed.append(Verdict(action="comment", reason="comment"))
    return comment


def judge_labels(
    labels: Labels | None, allowed: set[str] | None, decision: Decision
) -> Labels | None:
    if labels is None:
        return None
    if allowed is None:
        decision.allowed.append(Verdict(action="labels", reason="labels: no allowlist"))
        return labels

    def keep(change: str, names: list[str]) -> list[str]:
        kept = []
        for name in names:
            if name.casefold() in allowed:
                kept.append(name)
            else:
                reason = f"label {change} {name!r}: not in allowed_labels"
                decision.denied.append(Verdict(action="labels", reason=reason))
        return kept

    filtered = Labels(add=keep("add", labels.add), remove=keep("remove", labels.remove))
    if not filtered.add and not filtered.remove:
        return None
    decision.allowed.append(Verdict(action="labels", reason="labels"))
    return filtered


def deny_all(proposed: TaskResult, decision: Decision, reason: str) -> tuple[TaskResult, Decision]:
    """Nothing passes: every action proposed is denied with `reason`."""
    for action in ("output", "comment", "labels", "status", "commit", "metadata"):
        if getattr(proposed, action) is not None:
            # The output is posted as a comment, so it is reported as one.
            name = "comment" if action == "output" else action
            decision.denied.append(Verdict(action=name, reason=f"{action}: denied ({reason})"))
    nothing = TaskResult(
        output=None, comment=None, labels=None, status=None, commit=None, metadata=None
    )
    return nothing, decision
