//! Wire formats of the product's stack that are not JSON structure: how DRF renders times.

use chrono::{DateTime, SecondsFormat, Utc};

/// DRF's rendering of a datetime: ISO 8601, UTC as `Z`, microseconds only when non-zero.
pub fn render_time(t: &DateTime<Utc>) -> String {
    let format = if t.timestamp_subsec_micros() == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Micros
    };
    t.to_rfc3339_opts(format, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_times_like_drf() {
        let t = DateTime::parse_from_rfc3339("2026-01-11T11:13:05.109631Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(render_time(&t), "2026-01-11T11:13:05.109631Z");
        let t = DateTime::parse_from_rfc3339("2026-01-11T11:13:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(render_time(&t), "2026-01-11T11:13:05Z");
    }
}
