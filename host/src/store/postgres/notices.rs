//! Wake-ups between the daemons of one database: LISTEN/NOTIFY on the channel `mecha_tasks`.
//!
//! A write that makes tasks or write-backs due at once for any daemon (an operator's requeue,
//! leases released) notifies the channel once it has committed. Each store keeps one
//! connection listening, outside its pool, and counts the notifications in a `watch` channel
//! (`TaskStore::task_notices`): the daemon's due scans look at once instead of at their next
//! tick. A notification carries nothing; the scans read what is due, and a lost one (a
//! connection that dropped) costs a tick, never a task. After reconnecting the listener counts
//! one notification, for whatever it may have missed.

use std::future::poll_fn;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, GenericClient};

use super::pool::Session;
use super::tls::Tls;

/// Listens on the channel every daemon of a database notifies.
const LISTEN: &str = "LISTEN mecha_tasks";

/// Tells the other daemons that work is due, after the write that made it due has committed.
/// A failure is logged, not returned: the write stands, and their scans' ticks find the work.
pub(super) async fn notify<C: GenericClient + Sync>(session: &mut Session<'_, C>) {
    if let Err(error) = session
        .query(
            "telling the other daemons",
            "SELECT pg_notify('mecha_tasks', '')",
            &[],
        )
        .await
    {
        tracing::warn!(%error, "could not tell the other daemons about due work; their scans find it");
    }
}

/// 1 s between attempts to listen again: a database that went away is back within seconds,
/// and the scans' ticks cover the gap.
const RECONNECT: Duration = Duration::from_secs(1);

/// The notifications of one database, listened for from the first call of
/// [`Notices::receiver`] until the store (which keeps a receiver) is dropped.
pub(super) struct Notices {
    config: tokio_postgres::Config,
    tls: Tls,
    database: String,
    receiver: OnceLock<watch::Receiver<u64>>,
}

impl Notices {
    pub(super) fn new(config: tokio_postgres::Config, tls: Tls, database: String) -> Notices {
        Notices {
            config,
            tls,
            database,
            receiver: OnceLock::new(),
        }
    }

    /// A receiver that changes with every notification. The first call starts the listener,
    /// on the tokio runtime it is made on.
    pub(super) fn receiver(&self) -> watch::Receiver<u64> {
        self.receiver
            .get_or_init(|| listen(self.config.clone(), self.tls.clone(), self.database.clone()))
            .clone()
    }
}

/// Starts listening on `config`'s database; the receiver changes with every notification. The
/// listener stops when every receiver is gone: the store's own, and the daemon loops'.
fn listen(config: tokio_postgres::Config, tls: Tls, database: String) -> watch::Receiver<u64> {
    let (notices, receiver) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut reported = false;
        loop {
            tokio::select! {
                () = notices.closed() => return,
                ended = listen_once(&config, &tls, &notices) => {
                    if let Err(error) = ended && !reported {
                        tracing::warn!(%database, %error, "stopped listening for other daemons' work; its due scans still find it");
                        reported = true;
                    }
                }
            }
            tokio::select! {
                () = notices.closed() => return,
                () = tokio::time::sleep(RECONNECT) => {}
            }
        }
    });
    receiver
}

/// One connection's life: LISTEN, then count notifications until it ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &Tls,
    notices: &watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let wake = || notices.send_modify(|count| *count = count.wrapping_add(1));
    let listen = client.batch_execute(LISTEN);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done?;
                listening = true;
                wake();
            }
            message = poll_fn(|context| connection.poll_message(context)) => match message {
                Some(Ok(AsyncMessage::Notification(_))) => wake(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
}
