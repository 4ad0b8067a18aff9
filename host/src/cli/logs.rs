//! `mecha logs`: the audit trail, every stage of every event.

use std::time::Duration;

use clap::Args;

use super::{open_store, redactor, table};
use crate::config::home::Home;
use crate::config::worker::duration::parse_age;
use crate::store::{AuditRecord, LogFilter, timestamp};

/// 500 ms between polls with --follow: new records show up promptly without busy-waiting.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// Show audit records, newest first (oldest first with --follow, which then waits for more).
#[derive(Debug, Args)]
pub struct Logs {
    /// Only records of this trace (an event's id, or `worker:<name>`).
    #[arg(long)]
    trace: Option<String>,
    /// Only records of this worker.
    #[arg(long)]
    worker: Option<String>,
    /// Only records of this event.
    #[arg(long)]
    event: Option<String>,
    /// Only records of this task.
    #[arg(long)]
    task: Option<String>,
    /// Only actions starting with this, e.g. `task.` or `event.received`.
    #[arg(long)]
    action: Option<String>,
    /// Only records from this far back, e.g. 90s, 15m, 1h, 7d.
    #[arg(long, value_parser = parse_age)]
    since: Option<Duration>,
    /// At most this many (1-1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Keep printing new records as they are written.
    #[arg(long, short)]
    follow: bool,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

impl Logs {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let store = open_store(&home).await?;
        let redactor = redactor(&home);
        let since = self
            .since
            .map(|age| timestamp::now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let filter = |after_id: Option<i64>| LogFilter {
            trace: self.trace.clone(),
            event: self.event.clone(),
            task: self.task.clone(),
            worker: self.worker.clone(),
            action_prefix: self.action.clone(),
            since,
            until: None,
            limit: self.limit,
            after_id,
        };
        let mut records = store.query_logs(filter(None)).await?;
        records.reverse();
        let last = records.last().map(|record| record.id);
        self.print(&records, &redactor, true)?;
        if self.follow {
            self.follow(&*store, &redactor, &filter, last).await?;
        }
        store.close().await?;
        Ok(())
    }

    /// Prints records as they are written, until Ctrl-C.
    async fn follow(
        &self,
        store: &dyn crate::store::Store,
        redactor: &crate::redact::Redactor,
        filter: &dyn Fn(Option<i64>) -> LogFilter,
        mut last: Option<i64>,
    ) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            let fresh = store.query_logs(filter(Some(last.unwrap_or(0)))).await?;
            if let Some(record) = fresh.last() {
                last = Some(record.id);
            }
            self.print(&fresh, redactor, false)?;
        }
        Ok(())
    }

    fn print(
        &self,
        records: &[AuditRecord],
        redactor: &crate::redact::Redactor,
        header: bool,
    ) -> anyhow::Result<()> {
        if self.json {
            for record in records {
                let record = redactor.audit_record(record.clone());
                println!("{}", serde_json::to_string(&record)?);
            }
            return Ok(());
        }
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|record| {
                vec![
                    timestamp::rfc3339_ms(record.ts),
                    record.trace_id.clone(),
                    record.action.clone(),
                    record.outcome.as_str().to_owned(),
                    record.worker.clone(),
                    record.task_id.clone(),
                    redactor.redact(&record.error).into_owned(),
                ]
            })
            .collect();
        let text = table::render(
            &[
                "TIME", "TRACE", "ACTION", "OUTCOME", "WORKER", "TASK", "ERROR",
            ],
            &rows,
        );
        let text = if header {
            text.as_str()
        } else {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        };
        print!("{text}");
        Ok(())
    }
}
