//! mojo-server: the MOJO REST API for the physical server lifecycle.
pub mod redfish;
