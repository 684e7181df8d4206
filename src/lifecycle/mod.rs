//! Lifecycle work on registered servers, after registration: the job kinds (power, inventory
//! refresh; firmware updates and deployments build on the same pieces) and the power poll.
//!
//! - [`bmc`]: one BMC session per piece of work, over the node's pinned certificate and
//!   remembered credential, always deleted afterwards.
//! - [`fleet`]: runs per-server work of a job with bounded concurrency, records each server's
//!   result, progress and checkpoint, and computes the job's end.
//! - [`power`], [`inventory`]: the `power` and `inventory` job kinds.
//! - [`poll`]: the periodic power poll (a background task of the composition root).
//!
//! Starting these jobs (visibility, the busy rule) is `service::lifecycle`; their Redfish calls
//! are in `redfish/`, their SQL in `db/`.

pub mod bmc;
pub mod deploy;
pub mod firmware;
pub mod fleet;
pub mod inventory;
pub mod poll;
pub mod power;
