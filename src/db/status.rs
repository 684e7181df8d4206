//! The status columns as enums: the values each table's `status` column may hold.

/// Declares a status enum with its stored names (also its wire names).
macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every stored name, in declaration order (the list filter's choices).
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The stored (and wire) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The status stored as `text`.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Decodes the `status` column of `row`.
            pub fn from_row(row: &super::Row, column: &str) -> super::DbResult<$name> {
                let text = row.text(column)?;
                $name::parse(&text)
                    .ok_or_else(|| super::DbError::Decode(column.to_string(), "unknown status"))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for super::Val {
            fn from(s: $name) -> super::Val {
                super::Val::from(s.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

status_enum! {
    /// Where a job is in its life.
    JobStatus {
        /// Waiting for a worker.
        Queued = "queued",
        /// A worker holds its lease.
        Running = "running",
        /// Ended well.
        Succeeded = "succeeded",
        /// Ended with an error.
        Failed = "failed",
        /// Cancelled by a user (or its targets went away).
        Cancelled = "cancelled",
    }
}

status_enum! {
    /// What is known of a discovered BMC endpoint.
    NodeStatus {
        /// Seen by a scan, not registered.
        Discovered = "discovered",
        /// A registration is under way.
        Registering = "registering",
        /// Its servers are in the inventory.
        Registered = "registered",
        /// Seen before, silent in the last scan.
        Unreachable = "unreachable",
        /// Answered, but not usably (TLS refused, bad Redfish).
        Error = "error",
    }
}

status_enum! {
    /// A scan range's state.
    ScanRangeStatus {
        /// Not scanning.
        Ready = "ready",
        /// A scan job works on it.
        Scanning = "scanning",
        /// The last scan failed.
        Error = "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in JobStatus::NAMES {
            assert_eq!(JobStatus::parse(n).map(JobStatus::as_str), Some(*n));
        }
        assert_eq!(
            NodeStatus::parse("registered"),
            Some(NodeStatus::Registered)
        );
        assert_eq!(ScanRangeStatus::parse("nope"), None);
        assert_eq!(JobStatus::Failed.to_string(), "failed");
    }
}
