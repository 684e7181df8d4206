//! Business rules between the web edge and storage/BMC modules; no web types here.

pub mod catalogue;
