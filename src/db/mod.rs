//! Storage: one query path over SQLite and PostgreSQL.
//!
//! Every query in the code base is written once, in portable SQL with `$1..$n` placeholders
//! (both sqlx drivers accept them), and run through [`Db`] or [`Tx`]. Rows come back as the
//! backend-neutral [`Row`]. The few places where the dialects differ (case-insensitive search,
//! row locking, timestamp encoding) are answered by [`Dialect`], so no other module branches on
//! the backend.

//!
//! Layout: `error.rs` ([`DbError`], [`DbResult`], constraint-violation tests), `dialect.rs`
//! ([`Dialect`]), `value.rs` ([`Val`] and timestamp encoding), `sql.rs` (the [`Sql`] builder,
//! binding to each driver, statement helpers such as [`in_list`] and [`insert_rows`]),
//! `row.rs` ([`Row`] and decoding), `pool.rs` ([`Db`], [`Tx`]). The other modules hold the
//! queries of one resource each; `sqlite_setup.rs` configures SQLite connections.

pub mod audit;
pub mod auth_profiles;
pub mod baselines;
pub mod bmc_sessions;
pub mod catalogue;
pub mod deployments;
mod dialect;
mod error;
pub mod groups;
pub mod installation;
pub mod inventory;
pub mod jobs;
pub mod lifecycle;
pub mod list;
pub mod login_attempts;
pub mod nodes;
pub mod notify;
mod pool;
pub mod pools;
mod row;
pub mod scan_ranges;
pub mod servers;
mod sql;
mod sqlite_read;
mod sqlite_setup;
mod status;
pub mod switches;
pub mod users;
mod value;

pub use dialect::Dialect;
pub use error::{DbError, DbResult};
pub use pool::{Db, Exec, Tx};
pub use row::Row;
pub use sql::{existing_ids, in_list, insert_rows, update_columns, Sql};
pub use sqlite_read::Readers;
pub use status::{JobStatus, NodeStatus, ScanRangeStatus};
pub use value::{now, time_to_text, Val};
