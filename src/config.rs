//! The one configuration of a mojo-server process: CLI flags with environment fallbacks.
//!
//! Secrets (JWT key, credential key, admin password) come only from the environment or a
//! `*_FILE` variable, never from a flag, so they never show up in `ps`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

/// Command line of the `mojo-server` binary.
#[derive(Debug, Parser)]
#[command(name = "mojo-server", version, about = "MOJO REST API server")]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server and its workers (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create a superuser (member of group 1); the password is read from MOJO_NEW_PASSWORD or stdin.
    Createsuperuser {
        /// User name of the new superuser.
        #[arg(long)]
        username: String,
        /// E-mail address.
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Print the OpenAPI schema (YAML, or JSON with --format json) and exit.
    Openapi {
        /// `yaml` or `json`.
        #[arg(long, default_value = "yaml")]
        format: String,
    },
    /// Re-encrypt every stored BMC credential under a new key (read from MOJO_NEW_CREDENTIAL_KEY[_FILE]).
    RotateCredentialKey,
}

/// Parses `10MiB`, `8GiB`, `1024` into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?} (use e.g. 10MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?} (use B, KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses `24h`, `7d`, `30s`, `15m`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use e.g. 30s, 15m, 24h, 7d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("invalid duration unit in {s:?} (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs(secs))
}

/// Parses a comma-separated list of CIDR networks (a bare address is a /32 or /128).
pub fn parse_networks(s: &str) -> Result<Networks, String> {
    let mut nets = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let net = match part.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => part
                .parse::<std::net::IpAddr>()
                .map(IpNet::from)
                .map_err(|_| format!("invalid network {part:?} (use CIDR such as 10.0.0.0/8)"))?,
        };
        nets.push(net);
    }
    Ok(Networks(nets))
}

/// A list of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<IpNet>);

impl Networks {
    /// True when `ip` is inside one of the networks.
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

/// Login throttle: at most `count` failed logins per `per`, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures allowed per window (0 = throttling off).
    pub count: u32,
    /// The window.
    pub per: Duration,
}

/// Parses `10/min`, `5/s`, `100/hour`, `100/10min`, `off`.
pub fn parse_throttle(s: &str) -> Result<Throttle, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") || s == "0" {
        return Ok(Throttle {
            count: 0,
            per: Duration::from_secs(60),
        });
    }
    let (n, unit) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid throttle {s:?} (use e.g. 10/min or off)"))?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("invalid throttle count in {s:?}"))?;
    let unit = unit.trim();
    let digits = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let (times, unit) = unit.split_at(digits);
    let times: u64 = if times.is_empty() {
        1
    } else {
        times
            .parse()
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("invalid throttle period in {s:?}"))?
    };
    let per: u64 = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86400,
        _ => {
            return Err(format!(
                "invalid throttle period in {s:?} (s, min, hour, day, optionally with a count such as 10min)"
            ))
        }
    };
    Ok(Throttle {
        count,
        per: Duration::from_secs(per.saturating_mul(times)),
    })
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("expected text or json, got {s:?}")),
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting of the server (see the README's configuration table).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "MOJO_LISTEN",
        default_value = "0.0.0.0:8443",
        global = true
    )]
    pub listen: SocketAddr,
    /// Serve `/metrics` on this address (plain HTTP) instead of on the API listener.
    #[arg(long, env = "MOJO_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// Directory for the SQLite database, generated keys, the certificate and uploads.
    #[arg(
        long,
        env = "MOJO_DATA_DIR",
        default_value = "./mojo-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Database URL: postgres://... for PostgreSQL; default SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// Serve HTTPS (`on`, self-signed unless a certificate is given) or plain HTTP (`off`).
    #[arg(long, env = "MOJO_TLS", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set, global = true)]
    pub tls: bool,
    /// PEM certificate chain to serve instead of the self-signed one.
    #[arg(long, env = "MOJO_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for MOJO_TLS_CERT.
    #[arg(long, env = "MOJO_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Extra subject alternative names for the self-signed certificate (comma list).
    #[arg(long, env = "MOJO_TLS_SANS", default_value = "", global = true)]
    pub tls_sans: String,
    /// Access token lifetime.
    #[arg(long, env = "MOJO_ACCESS_TOKEN_LIFETIME", default_value = "24h", value_parser = parse_duration, global = true)]
    pub access_token_lifetime: Duration,
    /// Refresh token lifetime.
    #[arg(long, env = "MOJO_REFRESH_TOKEN_LIFETIME", default_value = "7d", value_parser = parse_duration, global = true)]
    pub refresh_token_lifetime: Duration,
    /// Return a new refresh token on refresh and revoke the old one.
    #[arg(long, env = "MOJO_ROTATE_REFRESH_TOKENS", default_value = "false", value_parser = parse_on_off, action = clap::ArgAction::Set, global = true)]
    pub rotate_refresh_tokens: bool,
    /// Failed-login throttle per (client, username), e.g. `10/min` or `off`.
    #[arg(long, env = "MOJO_LOGIN_THROTTLE", default_value = "10/min", value_parser = parse_throttle, global = true)]
    pub login_throttle: Throttle,
    /// Failed-login throttle per username across every client address, e.g. `100/10min` or
    /// `off` (delays one user's logins under attack, never locks the account).
    #[arg(long, env = "MOJO_LOGIN_THROTTLE_USER", default_value = "100/10min", value_parser = parse_throttle, global = true)]
    pub login_throttle_user: Throttle,
    /// Proxies whose X-Forwarded-For/Proto/Host headers are believed.
    #[arg(long, env = "MOJO_TRUSTED_PROXIES", default_value = "", value_parser = parse_networks, global = true)]
    pub trusted_proxies: Networks,
    /// Largest request body (uploads have their own limit).
    #[arg(long, env = "MOJO_MAX_BODY", default_value = "10MiB", value_parser = parse_size, global = true)]
    pub max_body: u64,
    /// Largest firmware or OS image upload.
    #[arg(long, env = "MOJO_MAX_UPLOAD", default_value = "8GiB", value_parser = parse_size, global = true)]
    pub max_upload: u64,
    /// Networks that scan ranges may cover.
    #[arg(long, env = "MOJO_DISCOVERY_ALLOWED_NETWORKS", default_value = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", value_parser = parse_networks, global = true)]
    pub discovery_allowed_networks: Networks,
    /// Database connections kept open.
    #[arg(long, env = "MOJO_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,
    /// Concurrent discovery probes.
    #[arg(
        long,
        env = "MOJO_SCAN_CONCURRENCY",
        default_value_t = 256,
        global = true
    )]
    pub scan_concurrency: usize,
    /// Probes per second (0 = unlimited).
    #[arg(long, env = "MOJO_SCAN_RATE", default_value_t = 0, global = true)]
    pub scan_rate: u32,
    /// Time budget of one discovery probe, in milliseconds.
    #[arg(
        long,
        env = "MOJO_PROBE_TIMEOUT_MS",
        default_value_t = 1500,
        global = true
    )]
    pub probe_timeout_ms: u64,
    /// Largest number of (address, port) probes in one scan range.
    #[arg(
        long,
        env = "MOJO_SCAN_MAX_PROBES",
        default_value_t = 65536,
        global = true
    )]
    pub scan_max_probes: u64,
    /// Deadline of one node registration.
    #[arg(long, env = "MOJO_REGISTER_TIMEOUT", default_value = "60s", value_parser = parse_duration, global = true)]
    pub register_timeout: Duration,
    /// Most BMCs talked to at once by one job (a pool power job, zero-touch onboarding
    /// registrations, ...) or by one power-poll round.
    #[arg(
        long,
        env = "MOJO_BMC_CONCURRENCY",
        default_value_t = 16,
        global = true
    )]
    pub bmc_concurrency: usize,
    /// How often the scan scheduler looks for due scan ranges, in milliseconds (tests shorten it).
    #[arg(
        long,
        env = "MOJO_SCHEDULER_TICK_MS",
        default_value_t = 5000,
        hide = true,
        global = true
    )]
    pub scheduler_tick_ms: u64,
    /// Job lease in seconds (renewed every third of it while the job runs).
    #[arg(long, env = "MOJO_JOB_LEASE_SECS", default_value_t = 30, global = true)]
    pub job_lease_secs: u64,
    /// Claims a job gets before it is failed (a job whose worker died this often is given up).
    #[arg(
        long,
        env = "MOJO_JOB_MAX_ATTEMPTS",
        default_value_t = 5,
        global = true
    )]
    pub job_max_attempts: i64,
    /// Job workers in this process.
    #[arg(long, env = "MOJO_WORKERS", default_value_t = 4, global = true)]
    pub workers: usize,
    /// Deadline of a power action on one server (reset sent, `PowerState` settled).
    #[arg(long, env = "MOJO_POWER_TIMEOUT", default_value = "300s", value_parser = parse_duration, global = true)]
    pub power_timeout: Duration,
    /// How long an OS deployment waits for its installer's callback before it fails.
    #[arg(long, env = "MOJO_DEPLOY_TIMEOUT", default_value = "4h", value_parser = parse_duration, global = true)]
    pub deploy_timeout: Duration,
    /// Seconds between rounds of the power poll that keeps `power_state` current (0 = off).
    #[arg(
        long,
        env = "MOJO_POWER_POLL_SECS",
        default_value_t = 300,
        global = true
    )]
    pub power_poll_secs: u64,
    /// Allow BMCs that only speak plain HTTP (credentials then travel unencrypted).
    #[arg(long, env = "MOJO_ALLOW_HTTP_BMC", default_value = "false", value_parser = parse_on_off, action = clap::ArgAction::Set, global = true)]
    pub allow_http_bmc: bool,
    /// CA bundle for strict verification of BMC certificates.
    #[arg(long, env = "MOJO_BMC_CA_BUNDLE", global = true)]
    pub bmc_ca_bundle: Option<PathBuf>,
    /// Base of the media URLs handed to BMCs (`https://mojo.example:8443`); default: this host
    /// as the BMC reaches it.
    #[arg(long, env = "MOJO_MEDIA_BASE_URL", global = true)]
    pub media_base_url: Option<String>,
    /// How long a signed media URL stays valid.
    #[arg(long, env = "MOJO_MEDIA_URL_TTL", default_value = "4h", value_parser = parse_duration, global = true)]
    pub media_url_ttl: Duration,
    /// An extra plain-HTTP listener serving only `/media/` (e.g. `0.0.0.0:8080`).
    #[arg(long, env = "MOJO_MEDIA_LISTEN", global = true)]
    pub media_listen: Option<SocketAddr>,
    /// Deadline of one firmware update on one BMC (its task followed to the end).
    #[arg(long, env = "MOJO_FIRMWARE_TIMEOUT", default_value = "2h", value_parser = parse_duration, global = true)]
    pub firmware_timeout: Duration,
    /// BMCs a pool firmware update works on at once.
    #[arg(
        long,
        env = "MOJO_FIRMWARE_CONCURRENCY",
        default_value_t = 8,
        global = true
    )]
    pub firmware_concurrency: usize,
    /// `text` or `json` log lines.
    #[arg(long, env = "MOJO_LOG_FORMAT", default_value = "text", value_parser = parse_log_format, global = true)]
    pub log_format: LogFormat,
    /// Most client connections open at once (more are closed on accept).
    #[arg(
        long,
        env = "MOJO_MAX_CONNECTIONS",
        default_value_t = 1000,
        global = true
    )]
    pub max_connections: usize,
    /// Time limit of one request's handling (uploads are bounded by body progress instead;
    /// node registration by MOJO_REGISTER_TIMEOUT).
    #[arg(long, env = "MOJO_REQUEST_TIMEOUT", default_value = "120s", value_parser = parse_duration, global = true)]
    pub request_timeout: Duration,
    /// A request head must arrive within this once started.
    #[arg(long, env = "MOJO_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true, hide = true)]
    pub header_read_timeout: Duration,
    /// Each chunk of a request body must arrive within this.
    #[arg(long, env = "MOJO_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true, hide = true)]
    pub body_timeout: Duration,
    /// A keep-alive connection with nothing to do is closed after this.
    #[arg(long, env = "MOJO_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration, global = true, hide = true)]
    pub idle_timeout: Duration,
    /// How long audit log entries are kept.
    #[arg(long, env = "MOJO_AUDIT_RETENTION", default_value = "90d", value_parser = parse_duration, global = true)]
    pub audit_retention: Duration,
    /// Seconds that running requests and jobs get to finish on shutdown.
    #[arg(
        long,
        env = "MOJO_SHUTDOWN_GRACE_SECS",
        default_value_t = 20,
        global = true
    )]
    pub shutdown_grace_secs: u64,
    /// Secrets handed over by an embedding program (tests); the binary reads them from the
    /// environment instead.
    #[arg(skip)]
    pub injected: InjectedSecrets,
}

/// Secrets given in code rather than through the environment.
#[derive(Clone, Default)]
pub struct InjectedSecrets {
    /// JWT signing key.
    pub secret_key: Option<String>,
    /// Credential sealing key (64 hex characters).
    pub credential_key: Option<String>,
    /// Password of the bootstrap `admin`.
    pub admin_password: Option<String>,
}

impl std::fmt::Debug for InjectedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InjectedSecrets(<redacted>)")
    }
}

impl Config {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.is_empty() => u.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("mojo.db").display()),
        }
    }

    /// Database connections to keep open.
    pub fn db_pool_size(&self) -> u32 {
        self.db_pool_size.unwrap_or(8)
    }

    /// True when the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        let url = self.database_url();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// Checks combinations that clap cannot; the message is the one line start-up prints.
    pub fn validate(&self) -> Result<(), String> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("MOJO_TLS_CERT and MOJO_TLS_KEY must be set together".into());
        }
        if self.db_pool_size == Some(0) {
            return Err("MOJO_DB_POOL_SIZE must be at least 1".into());
        }
        if self.scan_concurrency == 0 {
            return Err("MOJO_SCAN_CONCURRENCY must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("MOJO_MAX_CONNECTIONS must be at least 1".into());
        }
        if self.firmware_concurrency == 0 {
            return Err("MOJO_FIRMWARE_CONCURRENCY must be at least 1".into());
        }
        if let Some(base) = self.media_base_url.as_deref().filter(|b| !b.is_empty()) {
            match url::Url::parse(base) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => {
                    return Err(format!(
                        "MOJO_MEDIA_BASE_URL must be an http(s) URL, got {base:?}"
                    ))
                }
            }
        }
        if self.bmc_concurrency == 0 {
            return Err("MOJO_BMC_CONCURRENCY must be at least 1".into());
        }
        if self.workers == 0 {
            return Err("MOJO_WORKERS must be at least 1".into());
        }
        if self.job_max_attempts < 1 {
            return Err("MOJO_JOB_MAX_ATTEMPTS must be at least 1".into());
        }
        if self.job_lease_secs < 3 {
            return Err("MOJO_JOB_LEASE_SECS must be at least 3".into());
        }
        if self.probe_timeout_ms == 0 {
            return Err("MOJO_PROBE_TIMEOUT_MS must be positive".into());
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:") || self.is_postgres()) {
            return Err(format!(
                "DATABASE_URL must start with postgres:// or sqlite:, got {}",
                redact_url(&url)
            ));
        }
        Ok(())
    }
}

/// A database URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Reads a secret from `NAME` or the file named by `NAME_FILE` (trailing newline dropped).
pub fn secret_from_env(name: &str) -> Result<Option<String>, String> {
    if let Ok(v) = std::env::var(name) {
        if !v.is_empty() {
            return Ok(Some(v));
        }
    }
    let file_var = format!("{name}_FILE");
    if let Ok(path) = std::env::var(&file_var) {
        if !path.is_empty() {
            let v = std::fs::read_to_string(&path)
                .map_err(|e| format!("{file_var}: cannot read {path}: {e}"))?;
            return Ok(Some(v.trim_end_matches(['\r', '\n']).to_string()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_durations_throttles() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert!(parse_size("ten").is_err());
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_throttle("10/min").map(|t| t.count), Ok(10));
        assert_eq!(parse_throttle("off").map(|t| t.count), Ok(0));
        assert_eq!(
            parse_throttle("100/10min").map(|t| (t.count, t.per)),
            Ok((100, Duration::from_secs(600)))
        );
        assert!(parse_networks("127.0.0.0/8,::1").is_ok());
        assert!(parse_networks("nope").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:****@h/db"
        );
    }
}
