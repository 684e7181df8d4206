//! mojo-server: the MOJO REST API for the physical server lifecycle.
//!
//! Layers, top to bottom (dependencies point down): `app` (the composition root) -> `http`
//! (the web edge) -> `discovery` and other lifecycle modules -> `jobs` -> `ctx` -> `db` (all
//! SQL) and `redfish` (all BMC traffic). See README, "Layout".

pub mod app;
pub mod bmc_sessions;
pub mod config;
pub mod ctx;
pub mod db;
pub mod discovery;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod lifecycle;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod redfish;
pub mod service;
pub mod tls;
