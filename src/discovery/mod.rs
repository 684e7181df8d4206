//! Discovery: scan planning (ranges x ports inside the allowed networks), the scan job, the
//! probe seam, node registration and zero-touch onboarding.

pub mod inventory_map;
pub mod onboarding;
pub mod probe;
pub mod register;
pub mod scan;
pub mod sealing;

use std::net::IpAddr;

use futures::future::BoxFuture;

use crate::config::Networks;
use crate::redfish::ProbeOutcome;

/// The BMC side of a scan, behind a trait so tests can swap in a fake.
pub trait Prober: Send + Sync {
    /// Probes one endpoint within the prober's own time budget.
    fn probe(&self, ip: IpAddr, port: u16) -> BoxFuture<'_, ProbeOutcome>;
}

/// `scheme://ip:port` with IPv6 in brackets.
pub fn endpoint_url(scheme: &str, ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}"),
    }
}

/// Number of addresses from `from` to `to` inclusive (0 when reversed or of mixed families).
pub fn address_count(from: IpAddr, to: IpAddr) -> u128 {
    match (from, to) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let (a, b) = (u32::from(a), u32::from(b));
            if a <= b {
                u128::from(b - a) + 1
            } else {
                0
            }
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let (a, b) = (u128::from(a), u128::from(b));
            if a <= b {
                (b - a).saturating_add(1)
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// The `i`-th address after `from` (same family).
pub fn nth_address(from: IpAddr, i: u128) -> Option<IpAddr> {
    match from {
        IpAddr::V4(a) => u32::from(a)
            .checked_add(u32::try_from(i).ok()?)
            .map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(a) => u128::from(a).checked_add(i).map(|n| IpAddr::V6(n.into())),
    }
}

/// Every address of a range (callers bound the size first).
pub fn addresses(from: IpAddr, to: IpAddr) -> impl Iterator<Item = IpAddr> {
    let n = address_count(from, to);
    (0..n).filter_map(move |i| nth_address(from, i))
}

/// True when every address from `from` to `to` lies inside `allowed`. Callers bound the range
/// size first, so the fallback walk over the addresses stays small.
pub fn range_allowed(allowed: &Networks, from: IpAddr, to: IpAddr) -> bool {
    if allowed
        .0
        .iter()
        .any(|n| n.contains(&from) && n.contains(&to))
    {
        return true;
    }
    addresses(from, to).all(|ip| allowed.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_ranges() {
        let a: IpAddr = "10.0.0.250".parse().unwrap();
        let b: IpAddr = "10.0.1.4".parse().unwrap();
        assert_eq!(address_count(a, b), 11);
        assert_eq!(address_count(b, a), 0);
        assert_eq!(address_count(a, "::1".parse().unwrap()), 0);
        assert_eq!(addresses(a, b).last(), Some(b));
        let nets = crate::config::parse_networks("10.0.0.0/24,10.0.1.0/24").unwrap();
        assert!(range_allowed(&nets, a, b));
        let nets = crate::config::parse_networks("10.0.0.0/24").unwrap();
        assert!(!range_allowed(&nets, a, b));
        assert_eq!(
            endpoint_url("https", "::1".parse().unwrap(), 443),
            "https://[::1]:443"
        );
    }
}
