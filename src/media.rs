//! Signed media URLs: how BMCs fetch firmware images and OS ISOs from this server without a
//! bearer token.
//!
//! A URL is `<base>/media/<kind>/<id>/<expires>/<signature>/<file name>`: the signature is an
//! HMAC-SHA256 over kind, id and expiry (Unix seconds) under a key derived from
//! `MOJO_SECRET_KEY`, so a URL cannot be re-pointed at another file or kept past its expiry;
//! the file name (the uploaded name, sanitised) is there because some BMCs infer the image
//! type from it, and is not signed. The base is `MOJO_MEDIA_BASE_URL`, else this host as the
//! BMC reaches it (see [`MediaSigner::base_for`]), never a request's `Host` header.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::catalogue::{Kind, MediaFile};
use crate::db::DbError;

/// Why a media URL could not be made or was refused.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The URL is malformed, its signature wrong, or it expired (answered as a plain 404).
    #[error("no such media")]
    Refused,
    /// The address this host is reached at from a BMC could not be found.
    #[error("cannot tell the address a BMC reaches this server at: {0}")]
    NoRoute(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The listener that serves `/media/`: its scheme and bound address.
#[derive(Debug, Clone, Copy)]
pub struct MediaListener {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The bound address (port 0 already resolved).
    pub addr: SocketAddr,
}

/// Signs and checks media URLs; lives in the process context.
#[derive(Clone)]
pub struct MediaSigner {
    key: [u8; 32],
    ttl: Duration,
    base_url: Option<String>,
    listener: MediaListener,
}

impl std::fmt::Debug for MediaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSigner")
            .field("ttl", &self.ttl)
            .field("base_url", &self.base_url)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The URL path segment of a catalogue.
pub fn kind_segment(kind: Kind) -> &'static str {
    match kind {
        Kind::Firmware => "firmware",
        Kind::Os => "os",
    }
}

/// The catalogue of a URL path segment.
pub fn kind_from_segment(segment: &str) -> Option<Kind> {
    match segment {
        "firmware" => Some(Kind::Firmware),
        "os" => Some(Kind::Os),
        _ => None,
    }
}

/// The uploaded name with every character outside `A-Za-z0-9._-` replaced by `_`
/// (`image` when nothing is left).
pub fn sanitize_file_name(name: &str) -> String {
    let out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        "image".to_string()
    } else {
        out
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl MediaSigner {
    /// A signer whose key is derived from the JWT secret (`MOJO_SECRET_KEY`), for URLs valid
    /// `ttl`, based at `base_url` when given, else at `listener` as the BMC reaches it.
    pub fn new(
        secret: &[u8],
        ttl: Duration,
        base_url: Option<String>,
        listener: MediaListener,
    ) -> MediaSigner {
        // A key of its own: a media signature can never be replayed as a token signature.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
        mac.update(b"mojo-media-url-v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        MediaSigner {
            key,
            ttl,
            base_url: base_url
                .map(|b| b.trim().trim_end_matches('/').to_string())
                .filter(|b| !b.is_empty()),
            listener,
        }
    }

    fn mac(&self, kind: Kind, id: i64, expires: u64) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
        mac.update(format!("{}\n{id}\n{expires}", kind_segment(kind)).as_bytes());
        mac
    }

    /// The hex signature of (kind, id, expires).
    pub fn signature(&self, kind: Kind, id: i64, expires: u64) -> String {
        hex::encode(self.mac(kind, id, expires).finalize().into_bytes())
    }

    /// True when `signature` is right for (kind, id, expires) and the expiry is in the future
    /// (compared in constant time).
    pub fn verify(&self, kind: Kind, id: i64, expires: u64, signature: &str) -> bool {
        if expires < unix_now() {
            return false;
        }
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        self.mac(kind, id, expires).verify_slice(&given).is_ok()
    }

    /// The path `/media/<kind>/<id>/<expires>/<signature>/<file name>` valid for the TTL.
    pub fn path(&self, kind: Kind, id: i64, file_name: &str) -> String {
        let expires = unix_now() + self.ttl.as_secs();
        format!(
            "/media/{}/{id}/{expires}/{}/{}",
            kind_segment(kind),
            self.signature(kind, id, expires),
            sanitize_file_name(file_name)
        )
    }

    /// The base (`scheme://host:port`) of media URLs handed to the BMC at `bmc`:
    /// `MOJO_MEDIA_BASE_URL` when set; else the media listener's address when it is a specific
    /// one; else the source address the kernel picks to reach `bmc` (a UDP connect sends
    /// nothing), with the listener's scheme and port.
    pub fn base_for(&self, bmc: SocketAddr) -> Result<String, MediaError> {
        if let Some(base) = &self.base_url {
            return Ok(base.clone());
        }
        let ip = if self.listener.addr.ip().is_unspecified() {
            source_address_for(bmc)?
        } else {
            self.listener.addr.ip()
        };
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Ok(format!(
            "{}://{host}:{}",
            self.listener.scheme,
            self.listener.addr.port()
        ))
    }

    /// An absolute signed URL of a catalogue entry for the BMC at `bmc`.
    pub fn url_for(
        &self,
        kind: Kind,
        id: i64,
        file_name: &str,
        bmc: SocketAddr,
    ) -> Result<String, MediaError> {
        Ok(format!(
            "{}{}",
            self.base_for(bmc)?,
            self.path(kind, id, file_name)
        ))
    }
}

/// The local address the kernel would use to send to `peer`.
fn source_address_for(peer: SocketAddr) -> Result<IpAddr, MediaError> {
    let bind: SocketAddr = if peer.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = std::net::UdpSocket::bind(bind).map_err(|e| MediaError::NoRoute(e.to_string()))?;
    socket
        .connect(peer)
        .map_err(|e| MediaError::NoRoute(format!("{peer}: {e}")))?;
    socket
        .local_addr()
        .map(|a| a.ip())
        .map_err(|e| MediaError::NoRoute(e.to_string()))
}

/// A catalogue file found by a valid media URL (or by an authenticated download).
#[derive(Debug, Clone)]
pub struct ServedFile {
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its row's facts (size, original name).
    pub file: MediaFile,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(base: Option<&str>, addr: &str) -> MediaSigner {
        MediaSigner::new(
            b"0123456789abcdef0123",
            Duration::from_secs(3600),
            base.map(str::to_string),
            MediaListener {
                scheme: "http",
                addr: addr.parse().expect("addr"),
            },
        )
    }

    #[test]
    fn signs_and_verifies() {
        let s = signer(None, "127.0.0.1:8080");
        let exp = unix_now() + 100;
        let sig = s.signature(Kind::Firmware, 3, exp);
        assert!(s.verify(Kind::Firmware, 3, exp, &sig));
        assert!(!s.verify(Kind::Firmware, 4, exp, &sig));
        assert!(!s.verify(Kind::Os, 3, exp, &sig));
        assert!(!s.verify(Kind::Firmware, 3, exp + 1, &sig));
        assert!(!s.verify(Kind::Firmware, 3, exp, "zz"));
        let old = unix_now() - 1;
        let sig_old = s.signature(Kind::Firmware, 3, old);
        assert!(!s.verify(Kind::Firmware, 3, old, &sig_old));
    }

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize_file_name("BIOS 2.19 (x).exe"), "BIOS_2.19__x_.exe");
        assert_eq!(sanitize_file_name("ümlaut.bin"), "_mlaut.bin");
        assert_eq!(sanitize_file_name(""), "image");
        assert_eq!(sanitize_file_name(".."), "image");
        assert_eq!(sanitize_file_name("a/b"), "a_b");
    }

    #[test]
    fn bases() {
        let bmc: SocketAddr = "127.71.9.9:443".parse().expect("addr");
        assert_eq!(
            signer(Some("https://media.example/"), "0.0.0.0:1")
                .base_for(bmc)
                .expect("base"),
            "https://media.example"
        );
        assert_eq!(
            signer(None, "127.0.0.5:8080").base_for(bmc).expect("base"),
            "http://127.0.0.5:8080"
        );
        let derived = signer(None, "0.0.0.0:8080").base_for(bmc).expect("base");
        assert!(derived.starts_with("http://127."), "{derived}");
        assert!(derived.ends_with(":8080"), "{derived}");
    }
}
