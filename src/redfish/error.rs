//! The one error type of the Redfish layer.
//!
//! Display texts are short and meant for operators: the HTTP layer shows them as
//! `BMC <url>: <cause>`. No variant ever carries a password or a session token.

/// Everything that can go wrong while talking to a BMC.
#[derive(Debug, thiserror::Error)]
pub enum RedfishError {
    /// The BMC base URL (or a URL built from it) could not be parsed or is not usable.
    #[error("invalid BMC URL: {0}")]
    InvalidUrl(String),
    /// The BMC speaks plain HTTP and the configuration does not allow sending credentials over it.
    #[error("plain HTTP BMC refused (set MOJO_ALLOW_HTTP_BMC=true to allow)")]
    HttpNotAllowed,
    /// HTTPS BMC with neither a recorded certificate nor a CA bundle to check it against.
    #[error("no certificate recorded for this BMC; scan it again")]
    NoTrustAnchor,
    /// The configured CA bundle could not be read.
    #[error("invalid CA bundle: {0}")]
    CaBundle(String),
    /// The BMC presented a certificate other than the one recorded at discovery.
    #[error(
        "certificate changed since discovery (recorded sha256 {expected}, presented {actual})"
    )]
    CertificateChanged {
        /// Fingerprint recorded at discovery (lowercase hex SHA-256).
        expected: String,
        /// Fingerprint the BMC presented now.
        actual: String,
    },
    /// The TLS handshake failed for another reason (text starts with `TLS: `).
    #[error("TLS: {0}")]
    Tls(String),
    /// Nothing answered at the BMC address (refused, unreachable, reset).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A single request did not complete within its time limit.
    #[error("{0}: timed out")]
    Timeout(String),
    /// The overall deadline of the operation passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The caller passed an empty credential list.
    #[error("no credentials to try")]
    NoCredentials,
    /// Every credential was tried once and none was accepted.
    #[error("no credential accepted")]
    NoCredentialAccepted,
    /// The BMC answered with an unexpected HTTP status.
    #[error("{method} {path}: HTTP {status}")]
    Status {
        /// HTTP method of the request.
        method: &'static str,
        /// Path of the request (never contains credentials).
        path: String,
        /// Status code the BMC returned.
        status: u16,
    },
    /// The BMC refused a request and said why (its Redfish error message).
    #[error("{method} {path}: HTTP {status}: {message}")]
    Refused {
        /// HTTP method of the request.
        method: &'static str,
        /// Path of the request.
        path: String,
        /// Status code the BMC returned.
        status: u16,
        /// The BMC's message (`@Message.ExtendedInfo`, else `error.message`), clipped.
        message: String,
    },
    /// The BMC lacks what the operation needs (no matching ComputerSystem, no equivalent
    /// reset type, no update method).
    #[error("{0}")]
    Unsupported(String),
    /// The BMC answered with a redirect; the client follows none.
    #[error("{path}: redirect refused (HTTP {status})")]
    Redirect {
        /// Path of the request.
        path: String,
        /// Redirect status code.
        status: u16,
    },
    /// A response body was larger than the cap for that kind of resource.
    #[error("{path}: response larger than {limit} bytes")]
    BodyTooLarge {
        /// Path of the request.
        path: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// A response body was not the JSON object expected.
    #[error("{path}: invalid JSON ({reason})")]
    InvalidJson {
        /// Path of the request.
        path: String,
        /// Short parser message.
        reason: String,
    },
    /// The BMC pointed at a URL outside its own scheme://host:port.
    #[error("refused URL outside the BMC: {0}")]
    ForeignUrl(String),
    /// The BMC accepted a login but its answer lacked what a session needs.
    #[error("bad session response: {0}")]
    BadSession(String),
    /// A new session could not be recorded in the session journal; it was deleted again.
    #[error("cannot record the session: {0}")]
    Journal(String),
    /// Any other transport failure (connection dropped mid-response, protocol error).
    #[error("transport error: {0}")]
    Transport(String),
}

impl RedfishError {
    /// True when the BMC cannot be worked with right now (down, TLS refused, deadline passed,
    /// configuration refused it): login stops instead of burning more credentials, and inventory
    /// fails instead of degrading the field to None.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            RedfishError::Unreachable(_)
                | RedfishError::Timeout(_)
                | RedfishError::DeadlineExceeded
                | RedfishError::CertificateChanged { .. }
                | RedfishError::Tls(_)
                | RedfishError::HttpNotAllowed
                | RedfishError::NoTrustAnchor
                | RedfishError::CaBundle(_)
                | RedfishError::InvalidUrl(_)
                | RedfishError::Transport(_)
                // A login the BMC accepted but answered oddly: more credentials would only leave
                // more sessions behind.
                | RedfishError::BadSession(_)
                | RedfishError::Journal(_)
        )
    }
}

/// Cuts text taken from a BMC so that an error message stays one short line.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut out: String = one_line.chars().take(max).collect();
        out.push('…');
        out
    }
}
