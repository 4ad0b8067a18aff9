//! Tasks, worker results and audit records as they leave the daemon.
//!
//! A worker's reply is untrusted text that mecha stores, shows (`GET /task/{id}`, `GET /tasks`,
//! `mecha tasks`) and writes back (comments, labels and statuses on GitHub or GitLab). Each of
//! those exits takes the record from here, so none can show a result in a form the redactor did
//! not see: the reply is redacted by its decoded JSON values when it is stored
//! ([`Redactor::worker_reply`]), and again with the current secrets whenever it leaves, since a
//! secret may have been added to `secrets.yml` after the reply was stored.

use super::Redactor;
use crate::store::{AuditRecord, TaskRecord};
use crate::worker::result::{WorkerResult, parse_result};

impl Redactor {
    /// A worker's reply body, fit to store: a JSON reply redacted by its decoded values (and
    /// written out compact when anything was hidden), any other reply redacted as text.
    pub fn worker_reply(&self, body: &str) -> String {
        self.redact_json_text(body).into_owned()
    }

    /// The result a stored reply asks to write back, redacted by its decoded values; `None` when
    /// the reply is not a result object (see [`parse_result`]).
    pub fn worker_result(&self, stored: &str) -> Option<WorkerResult> {
        parse_result(&self.redact_json_text(stored))
    }

    /// `task` fit to show: its result and decision redacted by their decoded values, its
    /// prompt, context and errors redacted.
    pub fn task(&self, mut task: TaskRecord) -> TaskRecord {
        task.result = self.redact_json_text(&task.result).into_owned();
        task.decision = self.redact_json_text(&task.decision).into_owned();
        task.prompt = self.redact(&task.prompt).into_owned();
        self.redact_value(&mut task.context);
        task.error = self.redact(&task.error).into_owned();
        task.write_back_error = self.redact(&task.write_back_error).into_owned();
        task
    }

    /// `record` fit to show: its error and detail redacted (the detail by its decoded values).
    pub fn audit_record(&self, mut record: AuditRecord) -> AuditRecord {
        record.error = self.redact(&record.error).into_owned();
        self.redact_value(&mut record.detail);
        record
    }

    /// Each of `tasks` fit to show.
    pub fn tasks(&self, tasks: Vec<TaskRecord>) -> Vec<TaskRecord> {
        tasks.into_iter().map(|task| self.task(task)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{TaskState, WriteBackState};

    const CANARY: &str = "CANARY-0d9c-token";

    fn task(result: &str) -> TaskRecord {
        TaskRecord {
            id: "0123456789abcdef0123456789abcdef".parse().expect("an id"),
            worker_name: "w".into(),
            prompt: format!("review with {CANARY}"),
            context: serde_json::json!({ "note": CANARY }),
            event_id: None,
            dedup_key: String::new(),
            trace_id: String::new(),
            state: TaskState::Completed,
            result: result.to_owned(),
            error: format!("worker returned 500: {CANARY}"),
            attempts: 0,
            max_retries: 3,
            next_retry_at: None,
            created_at: 0,
            updated_at: 0,
            dispatched_at: None,
            completed_at: None,
            write_back: WriteBackState::Done,
            write_back_attempts: 0,
            write_back_next_at: None,
            write_back_error: format!("github: 401 for {CANARY}"),
            decision: r#"{"denied":[{"reason":"label \u0043ANARY-0d9c-token"}]}"#.to_owned(),
            lease: None,
        }
    }

    #[test]
    fn a_task_shows_no_secret_in_any_field_or_encoding() {
        let redactor = Redactor::new([CANARY.to_owned()]);
        let shown = redactor.task(task(r#"{"output":"\u0043ANARY-0d9c-token"}"#));
        let json = serde_json::to_string(&shown).expect("serializes");
        assert!(!json.contains("ANARY-0d9c"), "{json}");
        assert_eq!(shown.result, r#"{"output":"[REDACTED]"}"#);
    }

    #[test]
    fn a_worker_result_is_redacted_before_anyone_acts_on_it() {
        let redactor = Redactor::new([CANARY.to_owned()]);
        let stored = r#"{"comment":{"body":"\u0043ANARY-0d9c-token"},"labels":{"add":["CANARY-0d9c-token"]}}"#;
        let result = redactor.worker_result(stored).expect("a result");
        assert_eq!(
            result.comment.map(|c| c.body).as_deref(),
            Some("[REDACTED]")
        );
        assert_eq!(
            result.labels.map(|l| l.add),
            Some(vec!["[REDACTED]".to_owned()])
        );
        assert_eq!(redactor.worker_result("not json"), None);
    }
}
