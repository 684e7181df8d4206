//! Cross-process wake-ups of the job queue: PostgreSQL `LISTEN`/`NOTIFY` on one channel.
//!
//! [`job_queued`] runs inside the transaction that queues a job, so the notification is
//! delivered to every listening process exactly when that transaction commits (and never when
//! it rolls back). [`JobListener`] is one dedicated connection listening on the channel; when
//! the connection drops (PostgreSQL restarted) it reconnects on the next wait and reports the
//! gap, since notifications sent meanwhile are lost. SQLite has a single process per file and
//! no such channel: both are no-ops there.

use sqlx::postgres::PgListener;

use super::{Db, DbResult, Dialect, Exec, Sql};

/// The channel jobs are announced on.
pub const CHANNEL: &str = "mojo_jobs";

/// Announces a queued job to every process listening (PostgreSQL; nothing on SQLite). Call it
/// inside the enqueueing transaction.
pub async fn job_queued(mut tx: impl Exec) -> DbResult<()> {
    if tx.dialect() == Dialect::Postgres {
        tx.fetch_optional(&Sql::new("SELECT pg_notify($1, '')").arg(CHANNEL))
            .await?;
    }
    Ok(())
}

/// What a wait on the listener saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// A job was queued somewhere.
    Queued,
    /// The connection was lost and re-established: notifications may have been missed.
    Reconnected,
}

/// A connection listening for queued jobs (PostgreSQL only).
pub struct JobListener {
    inner: PgListener,
}

impl JobListener {
    /// Starts listening; None on SQLite.
    pub async fn connect(db: &Db) -> DbResult<Option<JobListener>> {
        let Db::Postgres(pool) = db else {
            return Ok(None);
        };
        let mut inner = PgListener::connect_with(pool).await?;
        inner.listen(CHANNEL).await?;
        Ok(Some(JobListener { inner }))
    }

    /// Waits for the next notification. A dropped connection is re-established (and the
    /// channel listened to again) by the driver on the next call; it is reported as
    /// [`Wakeup::Reconnected`] so the caller polls for what it missed. An error means the
    /// database cannot be reached right now; the caller waits a little and calls again.
    pub async fn recv(&mut self) -> DbResult<Wakeup> {
        match self.inner.try_recv().await? {
            Some(_) => Ok(Wakeup::Queued),
            None => Ok(Wakeup::Reconnected),
        }
    }
}
