//! The real prober: [`crate::redfish::probe`] behind the [`Prober`] seam.

use std::net::IpAddr;
use std::time::Duration;

use futures::future::BoxFuture;

use super::Prober;
use crate::redfish::{self, ProbeOptions, ProbeOutcome, RedfishError};

/// Probes with the Redfish module, every probe within the configured budget.
pub struct RedfishProber {
    opts: ProbeOptions,
}

impl RedfishProber {
    /// A prober whose every probe ends within `budget` (`MOJO_PROBE_TIMEOUT_MS`).
    pub fn new(budget: Duration) -> Result<RedfishProber, RedfishError> {
        let opts = ProbeOptions::new()?.with_timeout(budget);
        Ok(RedfishProber { opts })
    }
}

impl Prober for RedfishProber {
    fn probe(&self, ip: IpAddr, port: u16) -> BoxFuture<'_, ProbeOutcome> {
        Box::pin(redfish::probe(ip, port, &self.opts))
    }
}
