//! `mecha tasks ls|show|retry`.

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::{open_store, redactor, table};
use crate::config::home::Home;
use crate::pipeline::operator::{self, OperatorError};
use crate::store::{EventId, Store, TaskFilter, TaskId, TaskState, timestamp};
use crate::trace::Tracer;

#[derive(Debug, Subcommand)]
pub enum Tasks {
    /// List tasks, newest first.
    Ls(List),
    /// Show one task with its prompt, context, result and error.
    Show(Show),
    /// Send a failed (or dead-lettered) task again, with a fresh retry budget. A running
    /// daemon picks it up within a second.
    Retry(Retry),
}

impl Tasks {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let store = open_store(&home).await?;
        let result = match self {
            Tasks::Ls(command) => command.run(&home, &store).await,
            Tasks::Show(command) => command.run(&home, &store).await,
            Tasks::Retry(command) => command.run(&home, &store).await,
        };
        store.close().await?;
        result
    }
}

#[derive(Debug, Args)]
pub struct List {
    /// Only tasks in this state (pending, dispatched, completed, failed).
    #[arg(long)]
    state: Option<TaskState>,
    /// Only tasks of this worker.
    #[arg(long)]
    worker: Option<String>,
    /// Only tasks of this event.
    #[arg(long)]
    event: Option<EventId>,
    /// At most this many (1-1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only tasks older than this task id (the next page).
    #[arg(long)]
    before: Option<TaskId>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl List {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let tasks = store
            .list_tasks(TaskFilter {
                state: self.state,
                worker: self.worker,
                event_id: self.event,
                limit: self.limit,
                before: self.before,
                ..TaskFilter::default()
            })
            .await?;
        let redactor = redactor(home);
        // Redacted field by field, by decoded values: JSON escapes in the printed text would
        // hide a secret from a search of the text.
        let tasks = redactor.tasks(tasks);
        if self.json {
            return super::print_json(&tasks);
        }
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|task| {
                vec![
                    task.id.to_string(),
                    task.worker_name.clone(),
                    task.state.as_str().to_owned(),
                    task.attempts.to_string(),
                    timestamp::rfc3339(task.created_at),
                    first_line(&task.error),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &["ID", "WORKER", "STATE", "ATTEMPTS", "CREATED", "ERROR"],
                &rows
            )
        );
        Ok(())
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(79).collect::<String>())
    } else {
        line.to_owned()
    }
}

#[derive(Debug, Args)]
pub struct Show {
    id: TaskId,
    /// Print the task as JSON, as without it: taken so that scripts can pass --json to every
    /// command.
    #[arg(long)]
    json: bool,
}

impl Show {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let task = store
            .get_task(&self.id)
            .await?
            .with_context(|| format!("no task with id {}; `mecha tasks ls` lists them", self.id))?;
        super::print_json(&redactor(home).task(task))
    }
}

#[derive(Debug, Args)]
pub struct Retry {
    id: TaskId,
    /// Print the requeued task as JSON (as `tasks show` shows it).
    #[arg(long)]
    json: bool,
}

impl Retry {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        match operator::requeue(store.as_ref(), &Tracer::off(), &self.id, "cli").await {
            Ok(task) => super::print_outcome(
                self.json,
                &redactor(home).task(task),
                &format!(
                    "task {} is pending again; a running daemon sends it within a second",
                    self.id
                ),
            ),
            Err(OperatorError::TaskNotFound) => {
                bail!("no task with id {}; `mecha tasks ls` lists them", self.id)
            }
            Err(err) => Err(err.into()),
        }
    }
}
