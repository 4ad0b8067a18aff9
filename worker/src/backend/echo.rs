//! The echo backend (`--echo`): answers a task with its own prompt, running nothing.
//!
//! It exists for smoke tests: to check a deployment (the container is up, the key is right, mecha
//! writes the answer back) and for mecha's Docker tests, which run it in a `FROM scratch` image,
//! so it needs no shell and no file. The prompt is read as if it were an agent's output, by the
//! same rules as the command backend's, so a test can make the worker answer with a comment or
//! labels by sending that result as the prompt. `echo_delay_ms` in the context (whole
//! milliseconds) makes it wait first, to hold the worker busy.

use std::time::Duration;

use serde_json::{Map, Value};

use super::Error;
use crate::result::{self, Interpretation};
use crate::task::Task;

/// The context key that delays the answer.
const DELAY_KEY: &str = "echo_delay_ms";

pub async fn run(task: &Task, timeout: Duration) -> Result<Map<String, Value>, Error> {
    if let Some(millis) = task.context.get(DELAY_KEY).and_then(Value::as_u64) {
        let delay = tokio::time::sleep(Duration::from_millis(millis));
        if tokio::time::timeout(timeout, delay).await.is_err() {
            return Err(Error::TimedOut { after: timeout });
        }
    }
    match result::interpret(&task.prompt) {
        Interpretation::Result(result) => Ok(result),
        Interpretation::Failed(message) => Err(Error::Reported { message }),
    }
}
