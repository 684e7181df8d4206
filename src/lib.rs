//! mojo-server: the MOJO REST API for the physical server lifecycle.

pub mod app;
pub mod config;
pub mod db;
pub mod http;
pub mod keys;
pub mod redfish;
pub mod tls;

use http::AppState;

/// Starts one kind of background work (workers, sweepers) into `state.tasks`.
pub type StartFn = fn(&AppState);

/// Background work started with the server; each entry spawns into the app's TaskTracker and
/// stops when the shutdown token is cancelled.
pub const BACKGROUND: &[StartFn] = &[];

/// Scrape-time gauges added to `/metrics`.
pub const METRIC_GAUGES: &[http::ops::GaugeFn] = &[];
