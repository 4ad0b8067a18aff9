//! The workers a daemon dispatches to: definitions and states from the store, resolved for use.
//!
//! Definitions are stored as written (with `${VAR}` references unresolved, so secrets passed by
//! environment never reach the database) and resolved here with the daemon's environment. The
//! registry re-reads the table on every lookup, so `mecha worker add` or `stop` from another
//! process is seen at once; resolved definitions are cached by their stored form, so an
//! unchanged worker costs one row read, not a resolution.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::secrets::Secret;
use crate::config::worker::{WorkerDef, WorkerKind};
use crate::store::{self, Store, WorkerRow, WorkerState};

/// A worker ready for matching and dispatch.
#[derive(Debug, Clone)]
pub struct Worker {
    pub def: Arc<WorkerDef>,
    pub state: WorkerState,
    /// Where its `/task` and `/health` are: the definition's `endpoint` for live workers, the
    /// runtime endpoint of a started container, or the endpoint of this daemon's own runner of
    /// an adapter.
    pub endpoint: Option<String>,
    /// Why it is in `error`, redacted.
    pub error: Option<String>,
    /// The Docker container of a started (or stopped, not yet removed) persistent managed
    /// worker.
    pub container: Option<String>,
    /// Restarts in a row of its container since it was last seen healthy.
    pub restarts: u32,
    /// The daemon that runs its container, when one does.
    pub runtime_owner: Option<String>,
    /// The key of this daemon's runner of an adapter, which it asks of every request.
    adapter_key: Option<Secret>,
}

/// This daemon's runner of an adapter worker: where it answers and the key it asks for.
#[derive(Debug, Clone)]
pub struct LocalAdapter {
    pub endpoint: String,
    pub key: Secret,
}

impl Worker {
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The bearer key mecha sends to the worker, if it has one: a managed worker's `api_key`,
    /// or the key a running adapter was started with.
    pub fn api_key(&self) -> Option<&str> {
        self.def
            .docker
            .as_ref()
            .and_then(|docker| docker.api_key.as_deref())
            .filter(|key| !key.is_empty())
            .or_else(|| self.adapter_key.as_ref().map(Secret::expose))
    }
}

/// Resolves `${VAR}` references; the daemon's environment in production, a map in tests.
pub type Environment = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn process_environment() -> Environment {
    Arc::new(|name: &str| std::env::var(name).ok())
}

/// A stored definition and what it resolved to (or why it did not).
type Resolution = (serde_json::Value, Result<Arc<WorkerDef>, String>);

pub struct Workers {
    store: Arc<dyn Store>,
    environment: Environment,
    /// name → its last resolution
    cache: Mutex<HashMap<String, Resolution>>,
    /// name → this daemon's runner of that adapter worker. In memory only: a key lives as long
    /// as the runner it opens, and is never written anywhere. The endpoint is kept here too,
    /// and not taken from the store, because every daemon on a shared database runs its own
    /// runner, which only its own key opens.
    adapters: Mutex<HashMap<String, LocalAdapter>>,
}

impl Workers {
    pub fn new(store: Arc<dyn Store>, environment: Environment) -> Workers {
        Workers {
            store,
            environment,
            cache: Mutex::new(HashMap::new()),
            adapters: Mutex::new(HashMap::new()),
        }
    }

    /// Records this daemon's runner of adapter worker `name`, or forgets it (`None`) when the
    /// runner stops.
    pub fn set_adapter(&self, name: &str, runner: Option<LocalAdapter>) {
        let mut adapters = match self.adapters.lock() {
            Ok(adapters) => adapters,
            Err(poisoned) => poisoned.into_inner(),
        };
        match runner {
            Some(runner) => adapters.insert(name.to_owned(), runner),
            None => adapters.remove(name),
        };
    }

    fn local_adapter(&self, name: &str) -> Option<LocalAdapter> {
        let adapters = match self.adapters.lock() {
            Ok(adapters) => adapters,
            Err(poisoned) => poisoned.into_inner(),
        };
        adapters.get(name).cloned()
    }

    /// Every worker whose definition resolves, by name. Workers that do not resolve (e.g. an
    /// unset `${VAR}`) are left out and logged: they cannot be dispatched to.
    pub async fn all(&self) -> Result<Vec<Worker>, store::Error> {
        let rows = self.store.list_workers().await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| self.resolve(row))
            .collect())
    }

    /// One worker by name; `None` when it does not exist or does not resolve.
    pub async fn get(&self, name: &str) -> Result<Option<Worker>, store::Error> {
        Ok(self
            .store
            .get_worker(name)
            .await?
            .and_then(|row| self.resolve(row)))
    }

    /// Why the stored definition of `name` cannot be used, if it cannot.
    pub async fn problem(&self, name: &str) -> Result<Option<String>, store::Error> {
        let Some(row) = self.store.get_worker(name).await? else {
            return Ok(Some(format!("no worker named {name}")));
        };
        Ok(self.definition(&row.name, &row.definition).err())
    }

    fn resolve(&self, row: WorkerRow) -> Option<Worker> {
        match self.definition(&row.name, &row.definition) {
            Ok(def) => {
                let (endpoint, adapter_key, state) = if def.kind() == WorkerKind::Adapter {
                    // This daemon's runner or none. `offline` with no daemon named is what a
                    // daemon leaves when it stops (`daemon::adapters`), not an operator's stop:
                    // this daemon's runner still serves.
                    let local = self.local_adapter(&row.name);
                    let left = row.state == WorkerState::Offline
                        && row.runtime_owner.as_deref().is_none_or(str::is_empty);
                    let state = match local {
                        Some(_) if left => WorkerState::Online,
                        _ => row.state,
                    };
                    let (endpoint, key) = local.map(|local| (local.endpoint, local.key)).unzip();
                    (endpoint, key, state)
                } else {
                    // A live worker's is in its definition; a container's is recorded when it
                    // starts.
                    (def.endpoint.clone().or(row.endpoint), None, row.state)
                };
                Some(Worker {
                    adapter_key,
                    def,
                    state,
                    endpoint,
                    error: row.error,
                    container: row.container_id,
                    restarts: row.restarts,
                    runtime_owner: row.runtime_owner,
                })
            }
            // Logged once per stored definition, when it is resolved (see `definition`).
            Err(_) => None,
        }
    }

    fn definition(&self, name: &str, stored: &serde_json::Value) -> Result<Arc<WorkerDef>, String> {
        let mut cache = match self.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((cached, resolved)) = cache.get(name)
            && cached == stored
        {
            return resolved.clone();
        }
        let resolved = serde_json::from_value::<WorkerDef>(stored.clone())
            .map_err(|err| format!("stored definition of {name} is unreadable: {err}"))
            .and_then(|def| {
                def.interpolate(&*self.environment)
                    .map_err(|err| err.to_string())
            })
            .map(Arc::new);
        if let Err(reason) = &resolved {
            tracing::warn!(worker = %name, %reason, "worker cannot be used");
        }
        cache.insert(name.to_owned(), (stored.clone(), resolved.clone()));
        resolved
    }
}

/// The workers a task may be sent to when the caller names none: the online ones, in name
/// order, so round-robin is fair and predictable.
pub fn online(workers: &[Worker]) -> Vec<&Worker> {
    workers
        .iter()
        .filter(|worker| worker.state == WorkerState::Online)
        .collect()
}
