//! Business rules between the web edge and the storage and BMC modules: what a request may do
//! and how a multi-row change is made, with no web types here. Handlers extract, call one
//! function of this layer and map its result to the wire.

pub mod audit;
pub mod auth_profiles;
pub mod baselines;
pub mod catalogue;
pub mod deployments;
pub mod firmware;
pub mod groups;
pub mod lifecycle;
pub mod logins;
pub mod nodes;
pub mod passwords;
pub mod pools;
pub mod registration;
pub mod scans;
pub mod servers;
pub mod switches;
pub mod users;

/// Who is asking. The rules scope what may be seen and changed by it: a superuser sees every
/// pool; anyone else the pools of their groups and their sub-pools.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// User id.
    pub id: i64,
    /// User name (for the log).
    pub username: &'a str,
    /// Superusers see and do everything.
    pub is_superuser: bool,
    /// The user's groups.
    pub groups: &'a [i64],
}

impl Viewer<'_> {
    /// The groups that scope what this viewer sees, or None for a superuser (no scope).
    pub fn scope(&self) -> Option<&[i64]> {
        (!self.is_superuser).then_some(self.groups)
    }

    /// The viewer as the list engine scopes a list for it.
    pub fn caller(&self) -> crate::db::list::Caller<'_> {
        crate::db::list::Caller {
            id: self.id,
            groups: self.scope(),
        }
    }
}
