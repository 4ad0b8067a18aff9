//! The rules as a table: each case is a config, a proposed result, and the result and verdicts
//! expected, so that a rule's whole behaviour (kept, rewritten, dropped, and why) reads in one row.
//! Every case is also checked for what holds of every evaluation: `output` is untouched, nothing
//! is added, verdicts name their action, and the same input gives the same answer.

use super::*;

struct Case {
    name: &'static str,
    rules: &'static str,
    proposed: TaskResult,
    expected: TaskResult,
    allowed: Vec<String>,
    denied: Vec<String>,
}

/// The example in the `config` module's docs: a bit of every section.
const EXAMPLE: &str = r#"{
    "comment": {"allow": true, "max_length": 500},
    "labels": {"allow": true, "blocked": ["wontfix"], "allowed": ["bug", "security"]},
    "status": {"allow": true},
    "commit": {"allow": false, "max_size": 10000},
    "metadata": {"allow": false}
}"#;

const SUFFIX: &str = "\n\n... (truncated by policy)";

fn output_only() -> TaskResult {
    TaskResult::output_only(Some("the worker's own words".into()))
}

/// A result proposing one of every action.
fn full() -> TaskResult {
    TaskResult {
        comment: comment("Looks good"),
        labels: labels(&["bug"], &["triage"]),
        status: status("success"),
        commit: commit("+fixed\n"),
        metadata: Some(r#"{"model":"m","tokens":12}"#.into()),
        ..output_only()
    }
}

fn comment(body: &str) -> Option<Comment> {
    Some(Comment {
        body: body.to_owned(),
    })
}

fn labels(add: &[&str], remove: &[&str]) -> Option<Labels> {
    Some(Labels {
        add: add.iter().map(|label| label.to_string()).collect(),
        remove: remove.iter().map(|label| label.to_string()).collect(),
    })
}

fn status(state: &str) -> Option<Status> {
    Some(Status {
        state: state.to_owned(),
        description: "checked".into(),
    })
}

fn commit(diff: &str) -> Option<Commit> {
    Some(Commit {
        message: "fix it".into(),
        diff: diff.to_owned(),
    })
}

fn reasons(reasons: &[&str]) -> Vec<String> {
    reasons.iter().map(|reason| reason.to_string()).collect()
}

/// What DenyAll says for each of `actions` when the config has `problem`.
fn denied_all(actions: &[&str], problem: &str) -> Vec<String> {
    actions
        .iter()
        .map(|action| format!("{action}: denied (invalid policy config: {problem})"))
        .collect()
}

const ALL: [&str; 5] = ["comment", "labels", "status", "commit", "metadata"];

/// A case where the config is invalid: with every action proposed, only `output` survives.
fn invalid(name: &'static str, rules: &'static str, problem: &str) -> Case {
    Case {
        name,
        rules,
        proposed: full(),
        expected: output_only(),
        allowed: Vec::new(),
        denied: denied_all(&ALL, problem),
    }
}

/// A case about the comment alone: `body` under `rules` becomes `expected` with one verdict.
fn comment_case(
    name: &'static str,
    rules: &'static str,
    body: &str,
    expected: Option<&str>,
    verdict: &str,
) -> Case {
    let (allowed, denied) = match expected {
        Some(_) => (reasons(&[verdict]), Vec::new()),
        None => (Vec::new(), reasons(&[verdict])),
    };
    Case {
        name,
        rules,
        proposed: TaskResult {
            comment: comment(body),
            ..output_only()
        },
        expected: TaskResult {
            comment: expected.and_then(comment),
            ..output_only()
        },
        allowed,
        denied,
    }
}

/// A case about the labels alone.
fn labels_case(
    name: &'static str,
    rules: &'static str,
    proposed: (&[&str], &[&str]),
    expected: Option<(&[&str], &[&str])>,
    allowed: &[&str],
    denied: &[&str],
) -> Case {
    Case {
        name,
        rules,
        proposed: TaskResult {
            labels: labels(proposed.0, proposed.1),
            ..output_only()
        },
        expected: TaskResult {
            labels: expected.and_then(|(add, remove)| labels(add, remove)),
            ..output_only()
        },
        allowed: reasons(allowed),
        denied: reasons(denied),
    }
}

/// What a single-action case expects of its action, and the verdict that says so.
enum Outcome {
    Kept(&'static str),
    Dropped(&'static str),
}

/// A case about one action alone: `proposed` holds just that action, which is kept or dropped.
fn single_case(
    name: &'static str,
    rules: &'static str,
    proposed: TaskResult,
    outcome: Outcome,
) -> Case {
    let (expected, allowed, denied) = match outcome {
        Outcome::Kept(reason) => (proposed.clone(), reasons(&[reason]), Vec::new()),
        Outcome::Dropped(reason) => (output_only(), Vec::new(), reasons(&[reason])),
    };
    Case {
        name,
        rules,
        proposed,
        expected,
        allowed,
        denied,
    }
}

/// A case about a status with `state` alone.
fn status_case(name: &'static str, rules: &'static str, state: &str, outcome: Outcome) -> Case {
    let proposed = TaskResult {
        status: status(state),
        ..output_only()
    };
    single_case(name, rules, proposed, outcome)
}

/// A case about a commit of `diff` alone.
fn commit_case(name: &'static str, rules: &'static str, diff: &str, outcome: Outcome) -> Case {
    let proposed = TaskResult {
        commit: commit(diff),
        ..output_only()
    };
    single_case(name, rules, proposed, outcome)
}

fn cases() -> Vec<Case> {
    let a = |count: usize| "a".repeat(count);
    let crab = |count: usize| "🦀".repeat(count);
    vec![
        // No policy: everything passes, and every proposed action is listed.
        Case {
            name: "missing rules allow all",
            rules: "",
            proposed: full(),
            expected: full(),
            allowed: ALL.map(|action| format!("{action}: no policy")).to_vec(),
            denied: Vec::new(),
        },
        Case {
            name: "blank rules allow all",
            rules: " \n\t",
            proposed: full(),
            expected: full(),
            allowed: ALL.map(|action| format!("{action}: no policy")).to_vec(),
            denied: Vec::new(),
        },
        Case {
            name: "null rules allow all",
            rules: "null",
            proposed: full(),
            expected: full(),
            allowed: ALL.map(|action| format!("{action}: no policy")).to_vec(),
            denied: Vec::new(),
        },
        Case {
            name: "empty map allows all",
            rules: "{}",
            proposed: full(),
            expected: full(),
            allowed: ALL.map(|action| format!("{action}: no policy")).to_vec(),
            denied: Vec::new(),
        },
        Case {
            name: "allow all lists only the actions proposed",
            rules: "",
            proposed: TaskResult {
                status: status("pending"),
                ..output_only()
            },
            expected: TaskResult {
                status: status("pending"),
                ..output_only()
            },
            allowed: reasons(&["status: no policy"]),
            denied: Vec::new(),
        },
        Case {
            name: "allow all with only output decides nothing",
            rules: "null",
            proposed: output_only(),
            expected: output_only(),
            allowed: Vec::new(),
            denied: Vec::new(),
        },
        Case {
            name: "allow all without output",
            rules: "{}",
            proposed: TaskResult {
                output: None,
                ..full()
            },
            expected: TaskResult {
                output: None,
                ..full()
            },
            allowed: ALL.map(|action| format!("{action}: no policy")).to_vec(),
            denied: Vec::new(),
        },
        // The README's config, on a result that touches every rule.
        Case {
            name: "documented example",
            rules: EXAMPLE,
            proposed: TaskResult {
                labels: labels(&["bug", "wontfix", "enhancement"], &["triage"]),
                ..full()
            },
            expected: TaskResult {
                labels: labels(&["bug"], &[]),
                commit: None,
                metadata: None,
                ..full()
            },
            allowed: reasons(&["comment", "labels", "status"]),
            denied: reasons(&[
                "label add \"wontfix\": blocked by policy",
                "label add \"enhancement\": not in allowlist",
                "label remove \"triage\": not in allowlist",
                "commit: blocked by policy",
                "metadata: redacted by policy",
            ]),
        },
        // Sections: absent ones allow unconditionally, present ones without `allow` deny.
        Case {
            name: "absent sections allow unconditionally",
            rules: r#"{"comment": {"allow": true}}"#,
            proposed: full(),
            expected: full(),
            allowed: reasons(&[
                "comment",
                "labels: no rule",
                "status: no rule",
                "commit: no rule",
                "metadata: no rule",
            ]),
            denied: Vec::new(),
        },
        Case {
            name: "every section allowed",
            rules: r#"{"comment": {"allow": true}, "labels": {"allow": true},
                "status": {"allow": true}, "commit": {"allow": true}, "metadata": {"allow": true}}"#,
            proposed: full(),
            expected: full(),
            allowed: reasons(&ALL),
            denied: Vec::new(),
        },
        Case {
            name: "sections without allow deny",
            rules: r#"{"comment": {"max_length": 100}, "labels": {"blocked": ["x"]},
                "status": {}, "commit": {"max_size": 100}, "metadata": {}}"#,
            proposed: full(),
            expected: output_only(),
            allowed: Vec::new(),
            denied: reasons(&[
                "comment: blocked by policy",
                "labels: blocked by policy",
                "status: blocked by policy",
                "commit: blocked by policy",
                "metadata: redacted by policy",
            ]),
        },
        Case {
            name: "every section denied",
            rules: r#"{"comment": {"allow": false}, "labels": {"allow": false},
                "status": {"allow": false}, "commit": {"allow": false}, "metadata": {"allow": false}}"#,
            proposed: full(),
            expected: output_only(),
            allowed: Vec::new(),
            denied: reasons(&[
                "comment: blocked by policy",
                "labels: blocked by policy",
                "status: blocked by policy",
                "commit: blocked by policy",
                "metadata: redacted by policy",
            ]),
        },
        Case {
            name: "rules for actions not proposed decide nothing",
            rules: r#"{"comment": {"allow": false}, "metadata": {"allow": false}}"#,
            proposed: output_only(),
            expected: output_only(),
            allowed: Vec::new(),
            denied: Vec::new(),
        },
        // comment
        comment_case(
            "comment allowed",
            r#"{"comment": {"allow": true}}"#,
            "hi",
            Some("hi"),
            "comment",
        ),
        comment_case(
            "comment denied",
            r#"{"comment": {"allow": false, "max_length": 100}}"#,
            "hi",
            None,
            "comment: blocked by policy",
        ),
        comment_case(
            "comment without max_length is unlimited",
            r#"{"comment": {"allow": true}}"#,
            &a(70_000),
            Some(&a(70_000)),
            "comment",
        ),
        comment_case(
            "comment max_length 0 is unlimited",
            r#"{"comment": {"allow": true, "max_length": 0}}"#,
            &a(1000),
            Some(&a(1000)),
            "comment",
        ),
        comment_case(
            "comment of exactly max_length is kept",
            r#"{"comment": {"allow": true, "max_length": 30}}"#,
            &a(30),
            Some(&a(30)),
            "comment",
        ),
        comment_case(
            "comment one over max_length is truncated with the suffix",
            r#"{"comment": {"allow": true, "max_length": 30}}"#,
            &a(31),
            Some(&format!("{}{SUFFIX}", a(3))),
            "comment (truncated)",
        ),
        comment_case(
            "comment truncated to max_length 500",
            EXAMPLE,
            &a(600),
            Some(&format!("{}{SUFFIX}", a(473))),
            "comment (truncated)",
        ),
        comment_case(
            "comment max_length 28 leaves one character and the suffix",
            r#"{"comment": {"allow": true, "max_length": 28}}"#,
            &a(29),
            Some(&format!("a{SUFFIX}")),
            "comment (truncated)",
        ),
        comment_case(
            "comment max_length 27 is cut without the suffix",
            r#"{"comment": {"allow": true, "max_length": 27}}"#,
            &a(28),
            Some(&a(27)),
            "comment (truncated)",
        ),
        comment_case(
            "comment max_length 5 is cut without the suffix",
            r#"{"comment": {"allow": true, "max_length": 5}}"#,
            "hello world",
            Some("hello"),
            "comment (truncated)",
        ),
        comment_case(
            "comment max_length 1",
            r#"{"comment": {"allow": true, "max_length": 1}}"#,
            "hello",
            Some("h"),
            "comment (truncated)",
        ),
        comment_case(
            "comment length counts characters, not bytes",
            r#"{"comment": {"allow": true, "max_length": 30}}"#,
            &crab(30),
            Some(&crab(30)),
            "comment",
        ),
        comment_case(
            "comment truncation keeps emoji whole",
            r#"{"comment": {"allow": true, "max_length": 30}}"#,
            &crab(31),
            Some(&format!("{}{SUFFIX}", crab(3))),
            "comment (truncated)",
        ),
        comment_case(
            "comment truncation keeps accented letters whole",
            r#"{"comment": {"allow": true, "max_length": 29}}"#,
            &"é".repeat(40),
            Some(&format!("éé{SUFFIX}")),
            "comment (truncated)",
        ),
        comment_case(
            "comment short cut keeps emoji whole",
            r#"{"comment": {"allow": true, "max_length": 3}}"#,
            "🦀é🦀é",
            Some("🦀é🦀"),
            "comment (truncated)",
        ),
        comment_case(
            "comment max_length as a float",
            r#"{"comment": {"allow": true, "max_length": 100.0}}"#,
            &a(101),
            Some(&format!("{}{SUFFIX}", a(73))),
            "comment (truncated)",
        ),
        comment_case(
            "comment max_length fraction is dropped",
            r#"{"comment": {"allow": true, "max_length": 30.9}}"#,
            &a(31),
            Some(&format!("{}{SUFFIX}", a(3))),
            "comment (truncated)",
        ),
        comment_case(
            "empty comment is kept",
            r#"{"comment": {"allow": true, "max_length": 10}}"#,
            "",
            Some(""),
            "comment",
        ),
        // labels
        labels_case(
            "labels allowed",
            r#"{"labels": {"allow": true}}"#,
            (&["bug", "p1"], &["triage"]),
            Some((&["bug", "p1"], &["triage"])),
            &["labels"],
            &[],
        ),
        labels_case(
            "labels denied",
            r#"{"labels": {"allow": false, "allowed": ["bug"]}}"#,
            (&["bug"], &[]),
            None,
            &[],
            &["labels: blocked by policy"],
        ),
        labels_case(
            "blocked wins over allowed",
            r#"{"labels": {"allow": true, "blocked": ["bug"], "allowed": ["bug", "security"]}}"#,
            (&["bug", "security"], &[]),
            Some((&["security"], &[])),
            &["labels"],
            &["label add \"bug\": blocked by policy"],
        ),
        labels_case(
            "labels compare case-insensitively and keep their case",
            r#"{"labels": {"allow": true, "blocked": ["WontFix"], "allowed": ["Bug", "wontfix"]}}"#,
            (&["wontfix", "BUG"], &["WONTFIX", "bug"]),
            Some((&["BUG"], &["bug"])),
            &["labels"],
            &[
                "label add \"wontfix\": blocked by policy",
                "label remove \"WONTFIX\": blocked by policy",
            ],
        ),
        labels_case(
            "labels compare non-ASCII letters case-insensitively",
            r#"{"labels": {"allow": true, "blocked": ["ÜBER"]}}"#,
            (&["über", "ok"], &[]),
            Some((&["ok"], &[])),
            &["labels"],
            &["label add \"über\": blocked by policy"],
        ),
        labels_case(
            "an empty allowed list is no allowlist",
            r#"{"labels": {"allow": true, "allowed": []}}"#,
            (&["anything"], &["else"]),
            Some((&["anything"], &["else"])),
            &["labels"],
            &[],
        ),
        labels_case(
            "remove entries are checked against both lists",
            r#"{"labels": {"allow": true, "blocked": ["security"], "allowed": ["bug", "security"]}}"#,
            (&["bug"], &["security", "triage", "bug"]),
            Some((&["bug"], &["bug"])),
            &["labels"],
            &[
                "label remove \"security\": blocked by policy",
                "label remove \"triage\": not in allowlist",
            ],
        ),
        labels_case(
            "labels filtered to nothing are dropped without an allowed entry",
            r#"{"labels": {"allow": true, "blocked": ["bug"], "allowed": ["security"]}}"#,
            (&["bug", "p1"], &["Bug"]),
            None,
            &[],
            &[
                "label add \"bug\": blocked by policy",
                "label add \"p1\": not in allowlist",
                "label remove \"Bug\": blocked by policy",
            ],
        ),
        labels_case(
            "labels proposing nothing are dropped silently",
            r#"{"labels": {"allow": true}}"#,
            (&[], &[]),
            None,
            &[],
            &[],
        ),
        labels_case(
            "only removals survive",
            r#"{"labels": {"allow": true, "allowed": ["triage"]}}"#,
            (&["bug"], &["triage"]),
            Some((&[], &["triage"])),
            &["labels"],
            &["label add \"bug\": not in allowlist"],
        ),
        labels_case(
            "list items that are not strings are ignored",
            r#"{"labels": {"allow": true, "blocked": [1, null, "wontfix", {"a": 1}, ["x"], true]}}"#,
            (&["wontfix", "1", "true"], &[]),
            Some((&["1", "true"], &[])),
            &["labels"],
            &["label add \"wontfix\": blocked by policy"],
        ),
        labels_case(
            "allowed list of only non-strings is no allowlist",
            r#"{"labels": {"allow": true, "allowed": [1, 2]}}"#,
            (&["bug"], &[]),
            Some((&["bug"], &[])),
            &["labels"],
            &[],
        ),
        // status
        status_case(
            "status error",
            r#"{"status": {"allow": true}}"#,
            "error",
            Outcome::Kept("status"),
        ),
        status_case(
            "status failure",
            r#"{"status": {"allow": true}}"#,
            "failure",
            Outcome::Kept("status"),
        ),
        status_case(
            "status pending",
            r#"{"status": {"allow": true}}"#,
            "pending",
            Outcome::Kept("status"),
        ),
        status_case(
            "status success",
            r#"{"status": {"allow": true}}"#,
            "success",
            Outcome::Kept("status"),
        ),
        status_case(
            "status with an empty state passes",
            r#"{"status": {"allow": true}}"#,
            "",
            Outcome::Kept("status"),
        ),
        status_case(
            "status with an invalid state is dropped",
            r#"{"status": {"allow": true}}"#,
            "done",
            Outcome::Dropped("status: invalid state \"done\""),
        ),
        status_case(
            "status states are case-sensitive",
            r#"{"status": {"allow": true}}"#,
            "SUCCESS",
            Outcome::Dropped("status: invalid state \"SUCCESS\""),
        ),
        status_case(
            "status denied",
            r#"{"status": {"allow": false}}"#,
            "success",
            Outcome::Dropped("status: blocked by policy"),
        ),
        status_case(
            "status denied before its state is looked at",
            r#"{"status": {"allow": false}}"#,
            "done",
            Outcome::Dropped("status: blocked by policy"),
        ),
        status_case(
            "status absent lets an invalid state through",
            r#"{"comment": {"allow": true}}"#,
            "done",
            Outcome::Kept("status: no rule"),
        ),
        // commit
        commit_case(
            "commit allowed",
            r#"{"commit": {"allow": true}}"#,
            "+x\n",
            Outcome::Kept("commit"),
        ),
        commit_case(
            "commit denied",
            r#"{"commit": {"allow": false}}"#,
            "+x\n",
            Outcome::Dropped("commit: blocked by policy"),
        ),
        commit_case(
            "commit of exactly max_size passes",
            r#"{"commit": {"allow": true, "max_size": 10}}"#,
            &a(10),
            Outcome::Kept("commit"),
        ),
        commit_case(
            "commit one byte over max_size is dropped",
            r#"{"commit": {"allow": true, "max_size": 10}}"#,
            &a(11),
            Outcome::Dropped("commit: diff 11 bytes exceeds max_size 10"),
        ),
        commit_case(
            "commit size counts bytes, not characters",
            r#"{"commit": {"allow": true, "max_size": 10}}"#,
            &"é".repeat(6),
            Outcome::Dropped("commit: diff 12 bytes exceeds max_size 10"),
        ),
        commit_case(
            "commit max_size 0 is unlimited",
            r#"{"commit": {"allow": true, "max_size": 0}}"#,
            &a(100_000),
            Outcome::Kept("commit"),
        ),
        commit_case(
            "commit max_size as a float",
            r#"{"commit": {"allow": true, "max_size": 10.0}}"#,
            &a(11),
            Outcome::Dropped("commit: diff 11 bytes exceeds max_size 10"),
        ),
        // metadata
        Case {
            name: "metadata allowed",
            rules: r#"{"metadata": {"allow": true}}"#,
            proposed: full(),
            expected: full(),
            allowed: reasons(&[
                "comment: no rule",
                "labels: no rule",
                "status: no rule",
                "commit: no rule",
                "metadata",
            ]),
            denied: Vec::new(),
        },
        Case {
            name: "metadata redacted",
            rules: r#"{"metadata": {"allow": false}}"#,
            proposed: full(),
            expected: TaskResult {
                metadata: None,
                ..full()
            },
            allowed: reasons(&[
                "comment: no rule",
                "labels: no rule",
                "status: no rule",
                "commit: no rule",
            ]),
            denied: reasons(&["metadata: redacted by policy"]),
        },
        // Invalid configs deny everything but output, naming what is wrong.
        invalid(
            "allow as a string",
            r#"{"comment": {"allow": "yes"}}"#,
            "comment.allow must be true or false, got \"yes\"",
        ),
        invalid(
            "allow as a number",
            r#"{"labels": {"allow": 1}}"#,
            "labels.allow must be true or false, got 1",
        ),
        invalid(
            "allow as null",
            r#"{"status": {"allow": null}}"#,
            "status.allow must be true or false, got null",
        ),
        invalid(
            "max_length as a string",
            r#"{"comment": {"allow": true, "max_length": "10"}}"#,
            "comment.max_length must be a number of 0 or more, got \"10\"",
        ),
        invalid(
            "negative max_length",
            r#"{"comment": {"allow": true, "max_length": -1}}"#,
            "comment.max_length must be a number of 0 or more, got -1",
        ),
        invalid(
            "negative float max_size",
            r#"{"commit": {"allow": true, "max_size": -0.5}}"#,
            "commit.max_size must be a number of 0 or more, got -0.5",
        ),
        invalid(
            "blocked as a string",
            r#"{"labels": {"allow": true, "blocked": "x"}}"#,
            "labels.blocked must be a list of labels, got \"x\"",
        ),
        invalid(
            "allowed as a map",
            r#"{"labels": {"allow": true, "allowed": {"bug": true}}}"#,
            "labels.allowed must be a list of labels, got a map",
        ),
        invalid(
            "section as a list",
            r#"{"comment": [{"allow": true}]}"#,
            "comment must be a map, got a list",
        ),
        invalid(
            "section as a boolean",
            r#"{"metadata": true}"#,
            "metadata must be a map, got true",
        ),
        invalid(
            "section as null",
            r#"{"commit": null}"#,
            "commit must be a map, got null",
        ),
        invalid(
            "misspelt section",
            r#"{"coment": {"allow": false}}"#,
            "unknown section \"coment\" (sections are comment, labels, status, commit and metadata)",
        ),
        invalid(
            "unknown key in a section",
            r#"{"comment": {"allow": true, "max_len": 10}}"#,
            "unknown key comment.max_len (comment takes allow, max_length)",
        ),
        invalid(
            "key of another section",
            r#"{"status": {"allow": true, "max_size": 10}}"#,
            "unknown key status.max_size (status takes allow)",
        ),
        invalid(
            "rules that are not JSON",
            "{comment",
            "the policy is not valid JSON: key must be a string at line 1 column 2",
        ),
        invalid(
            "rules as YAML text",
            "comment: {allow: true}",
            "the policy is not valid JSON: expected value at line 1 column 1",
        ),
        invalid(
            "rules as a JSON array",
            r#"[{"comment": {"allow": true}}]"#,
            "the policy must be a map of sections, got a list",
        ),
        invalid(
            "rules as a JSON string",
            r#""allow""#,
            "the policy must be a map of sections, got \"allow\"",
        ),
        invalid(
            "every problem is reported",
            r#"{"coment": {}, "comment": {"allow": "yes", "max_length": -1}, "labels": {"blocked": "x"}}"#,
            "unknown section \"coment\" (sections are comment, labels, status, commit and metadata); \
             comment.allow must be true or false, got \"yes\"; \
             comment.max_length must be a number of 0 or more, got -1; \
             labels.blocked must be a list of labels, got \"x\"",
        ),
        invalid(
            "one bad section spoils the valid ones",
            r#"{"comment": {"allow": true}, "metadata": {"allow": "no"}}"#,
            "metadata.allow must be true or false, got \"no\"",
        ),
        Case {
            name: "deny all lists only the actions proposed",
            rules: r#"{"comment": {"allow": 1}}"#,
            proposed: TaskResult {
                commit: commit("+x\n"),
                metadata: Some("{}".into()),
                ..output_only()
            },
            expected: output_only(),
            allowed: Vec::new(),
            denied: denied_all(
                &["commit", "metadata"],
                "comment.allow must be true or false, got 1",
            ),
        },
        Case {
            name: "deny all with only output decides nothing",
            rules: "[]",
            proposed: output_only(),
            expected: output_only(),
            allowed: Vec::new(),
            denied: Vec::new(),
        },
        Case {
            name: "deny all without output",
            rules: "42",
            proposed: TaskResult {
                output: None,
                comment: comment("hi"),
                ..output_only()
            },
            expected: TaskResult::output_only(None),
            allowed: Vec::new(),
            denied: denied_all(&["comment"], "the policy must be a map of sections, got 42"),
        },
    ]
}

fn reasons_of(verdicts: &[mecha_plugin_sdk::policy::Verdict]) -> Vec<String> {
    verdicts
        .iter()
        .map(|verdict| verdict.reason.clone())
        .collect()
}

/// What is wrong with one case's evaluation, if anything.
fn check(case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let (result, decision) = evaluate(case.proposed.clone(), case.rules);
    if result != case.expected {
        problems.push(format!(
            "result\n      got: {result:?}\n expected: {:?}",
            case.expected
        ));
    }
    let allowed = reasons_of(&decision.allowed);
    if allowed != case.allowed {
        problems.push(format!(
            "allowed\n      got: {allowed:?}\n expected: {:?}",
            case.allowed
        ));
    }
    let denied = reasons_of(&decision.denied);
    if denied != case.denied {
        problems.push(format!(
            "denied\n      got: {denied:?}\n expected: {:?}",
            case.denied
        ));
    }
    if result.output != case.proposed.output {
        problems.push("output was changed".into());
    }
    if result
        .actions()
        .iter()
        .any(|action| !case.proposed.has(*action))
    {
        problems.push("the result has an action that was not proposed".into());
    }
    for verdict in decision.allowed.iter().chain(&decision.denied) {
        let named = verdict.reason.starts_with(&verdict.action)
            || (verdict.action == "labels" && verdict.reason.starts_with("label "));
        if !named || !ALL.contains(&verdict.action.as_str()) {
            problems.push(format!("verdict {verdict:?} does not name its action"));
        }
    }
    if evaluate(case.proposed.clone(), case.rules) != (result, decision) {
        problems.push("a second evaluation gave another answer".into());
    }
    problems
}

#[test]
fn rules_table() {
    let cases = cases();
    let mut names = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        assert!(
            names.insert(case.name),
            "duplicate case name {:?}",
            case.name
        );
        for problem in check(case) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Truncation over every small length and limit, mixing one-, two- and four-byte characters:
/// the body never exceeds the limit, is a prefix of the original, and carries the suffix exactly
/// when it was cut with room to spare.
#[test]
fn truncation_never_exceeds_the_limit_or_splits_a_character() {
    let alphabet = ['a', 'é', '🦀', '\n'];
    for length in 0..=60 {
        let body: String = (0..length)
            .map(|index| alphabet[index % alphabet.len()])
            .collect();
        for max_length in 0..=60 {
            let cut = truncate(&body, max_length);
            let should_cut = max_length > 0 && length > max_length;
            assert_eq!(
                cut.is_some(),
                should_cut,
                "{length} chars, max {max_length}"
            );
            let Some(cut) = cut else { continue };
            assert_eq!(
                cut.chars().count(),
                max_length,
                "{length} chars, max {max_length}"
            );
            let kept = match cut.strip_suffix(SUFFIX) {
                Some(kept) => {
                    assert!(max_length > 27, "suffix added at max {max_length}");
                    kept
                }
                None => {
                    assert!(max_length <= 27, "suffix missing at max {max_length}");
                    &cut
                }
            };
            assert!(body.starts_with(kept), "{length} chars, max {max_length}");
        }
    }
}

#[test]
fn the_suffix_is_27_characters() {
    assert_eq!(TRUNCATION_SUFFIX, SUFFIX);
    assert_eq!(SUFFIX.chars().count(), 27);
}
