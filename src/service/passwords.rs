//! Passwords: argon2id hashes, made and checked off the async threads (deliberately slow).
//!
//! Every hash and every verification (including the decoy hash spent on an unknown user name)
//! runs under one process-wide bound: at most [`HashLimit::running`] at once (about the number
//! of cores, so at most that many argon2 work areas of 19 MiB are allocated), a short queue of
//! waiters behind them, and past that the caller is told to come back later ([`HashError::Busy`],
//! answered 429 with `Retry-After`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::db::{users, Db, DbError};

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot and every place in the queue is taken: try again in a second.
    #[error("too many password checks at once")]
    Busy,
    /// argon2 failed (or its task did).
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// Storage failed while reading the user.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Seconds a caller refused with [`HashError::Busy`] is told to wait.
pub const BUSY_RETRY_AFTER: u64 = 1;

/// The bound on concurrent hashing.
#[derive(Debug)]
pub struct HashLimit {
    running: Semaphore,
    /// Hashes admitted (running or queued).
    admitted: AtomicUsize,
    /// Most hashes admitted at once.
    capacity: usize,
}

impl HashLimit {
    /// `running` hashes at once and `queue` more waiting.
    pub fn new(running: usize, queue: usize) -> HashLimit {
        let running = running.max(1);
        HashLimit {
            running: Semaphore::new(running),
            admitted: AtomicUsize::new(0),
            capacity: running + queue,
        }
    }

    /// The process-wide bound: one hash per core, a queue of four per core (at least 8).
    pub fn global() -> &'static HashLimit {
        static LIMIT: OnceLock<HashLimit> = OnceLock::new();
        LIMIT.get_or_init(|| {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2);
            HashLimit::new(cores, (cores * 4).max(8))
        })
    }

    /// Runs `work` on a blocking thread once a slot is free, or refuses at once when the queue
    /// is full.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let admitted = self.admitted.fetch_add(1, Ordering::SeqCst);
        let _admission = Admission(&self.admitted);
        if admitted >= self.capacity {
            return Err(HashError::Busy);
        }
        let _slot = self
            .running
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            // The hash's 19 MiB work area goes back to the system now, not when the
            // blocking thread is next busy (or never): logins are rare, the area is large.
            crate::memory::release_freed_on_this_thread();
            out
        })
        .await
        .map_err(|e| HashError::Failed(format!("hashing task failed: {e}")))
    }
}

/// Gives an admission back when the hash is done (or refused, or its caller went away).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An argon2id hash of a password (blocking, unbounded: for the command line only).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// An argon2id hash of a password, computed on a blocking thread within the bound.
pub async fn hash(password: String) -> Result<String, HashError> {
    HashLimit::global()
        .run(move || hash_blocking(&password))
        .await?
}

fn verify_blocking(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The id of the active user with these credentials. Unknown users cost the same hashing
/// work as known ones (within the same bound), so response time does not reveal which names
/// exist.
pub async fn check(db: &Db, username: &str, password: &str) -> Result<Option<i64>, HashError> {
    let (id, hash, active) =
        users::login_row(db, username)
            .await?
            .unwrap_or((0, String::new(), false));
    let password = password.to_string();
    let ok = HashLimit::global()
        .run(move || {
            if hash.is_empty() {
                // Burn the same work for unknown users.
                let _ = hash_blocking(&password);
                false
            } else {
                verify_blocking(&hash, &password)
            }
        })
        .await?;
    Ok((ok && active).then_some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_past_the_queue() {
        let limit = std::sync::Arc::new(HashLimit::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let mut running = Vec::new();
        for _ in 0..2 {
            let (limit, rx) = (limit.clone(), rx.clone());
            running.push(tokio::spawn(async move {
                limit
                    .run(move || {
                        let _ = rx.lock().map(|r| r.recv());
                    })
                    .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(matches!(limit.run(|| ()).await, Err(HashError::Busy)));
        let _ = tx.send(());
        let _ = tx.send(());
        for r in running {
            assert!(r.await.is_ok_and(|r| r.is_ok()));
        }
        assert!(limit.run(|| ()).await.is_ok());
    }
}
