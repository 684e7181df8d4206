//! The session journal: how the Redfish code reports each session it opens and closes, so that
//! a session a killed process leaves behind can be found and deleted later. The journal itself
//! (a database table) is implemented outside `redfish/`, which knows no database.

use std::sync::Arc;

use futures::future::BoxFuture;

/// Records each Redfish session while it is open, so that a session a killed process leaves
/// behind can be deleted later by whoever reads the record. The session code calls
/// [`SessionJournal::opened`] after the BMC created a session and *before* the token is used
/// (an error there deletes the session again and fails the login), and
/// [`SessionJournal::closed`] once its DELETE succeeded (or the BMC said it is gone).
pub trait SessionJournal: Send + Sync {
    /// A session `session_url` with `token` was opened on the BMC at `bmc` (`scheme://host:port`).
    fn opened<'a>(
        &'a self,
        bmc: &'a str,
        session_url: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
    /// The session `session_url` is deleted on the BMC.
    fn closed<'a>(&'a self, session_url: &'a str) -> BoxFuture<'a, ()>;
}

/// Why a session could not be recorded (the journal's own words).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// A shared [`SessionJournal`].
#[derive(Clone)]
pub struct Journal(pub Arc<dyn SessionJournal>);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}
