//! Emulated BMC labs for tests: each lab has its own state dir and address block (always inside
//! 127.0.0.0/8) and is stopped when dropped, also when the test fails.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The lab script, next to the repository.
pub const LAB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/redfish-lab/bmc-lab.sh"
);

/// How long `start` waits for every slot to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// One slot of `manifest.tsv`.
#[derive(Debug, Clone)]
pub struct Slot {
    pub idx: usize,
    pub ip: String,
    pub port: u16,
    pub scheme: String,
    pub kind: String,
    pub user: String,
    pub password: String,
}

impl Slot {
    /// The slot's address, parsed (every lab address is IPv4 loopback).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ip.parse().expect("lab slot address is IPv4")
    }

    /// The slot's address as an `IpAddr`.
    pub fn ip_addr(&self) -> IpAddr {
        IpAddr::V4(self.ipv4())
    }

    /// `scheme://ip:port` of the slot.
    pub fn base_url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.ip, self.port)
    }
}

/// A running lab.
pub struct Lab {
    pub state: tempfile::TempDir,
    pub slots: Vec<Slot>,
}

impl Lab {
    /// `bmc-lab.sh <cmd> N args...` with its own state dir; panics when the lab does not start.
    pub fn start(cmd: &str, n: usize, args: &[&str]) -> Lab {
        Lab::try_start(cmd, n, args).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `bmc-lab.sh <cmd> N --base BASE --port PORT extra...`.
    pub fn start_on(cmd: &str, n: usize, base: &str, port: u16, extra: &[&str]) -> Result<Lab> {
        let port = port.to_string();
        let mut args = vec!["--base", base, "--port", &port];
        args.extend_from_slice(extra);
        Lab::try_start(cmd, n, &args)
    }

    /// `bmc-lab.sh <cmd> N args...`; waits until every slot that should listen does.
    pub fn try_start(cmd: &str, n: usize, args: &[&str]) -> Result<Lab> {
        let state = tempfile::Builder::new().prefix("rf-lab-").tempdir()?;
        // From here on, dropping `lab` stops whatever the script started.
        let mut lab = Lab {
            state,
            slots: Vec::new(),
        };
        let out = Command::new("bash")
            .arg(LAB)
            .arg(cmd)
            .arg(n.to_string())
            .args(args)
            .env("BMCLAB_STATE", lab.state.path())
            .output()
            .context("run bmc-lab.sh")?;
        if !out.status.success() {
            bail!(
                "bmc-lab.sh {cmd} failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let manifest = std::fs::read_to_string(lab.path("manifest.tsv")).context("manifest")?;
        for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 7 {
                bail!("short manifest line: {line:?}");
            }
            let ip: Ipv4Addr = f[1].parse().context("slot address")?;
            if !ip.is_loopback() {
                bail!("lab slot {ip} is outside 127.0.0.0/8");
            }
            lab.slots.push(Slot {
                idx: f[0].parse()?,
                ip: ip.to_string(),
                port: f[2].parse()?,
                scheme: f[3].to_string(),
                kind: f[4].to_string(),
                user: f[5].to_string(),
                password: f[6].to_string(),
            });
        }
        lab.wait_listening()?;
        Ok(lab)
    }

    /// `bmc-lab.sh start` can return before a slow-starting mock has bound its port (its
    /// readiness check skips log files that do not exist yet): wait until every slot that should
    /// listen does (at most 30 s).
    fn wait_listening(&self) -> Result<()> {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        for s in self
            .slots
            .iter()
            .filter(|s| s.scheme != "-" && s.kind != "none")
        {
            let addr = SocketAddr::new(s.ip_addr(), s.port);
            while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if Instant::now() > deadline {
                    bail!("lab slot {} ({addr}) never listened", s.idx);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// A file in the lab's state dir (`lab.crt`, `ca.crt`, `bmc-<ip>.crt`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.state.path().join(name)
    }

    /// SHA-256 of the lab's shared BMC certificate, as the probe should report it.
    pub fn cert_sha256(&self) -> Result<String> {
        let pem = std::fs::read(self.path("lab.crt"))?;
        let cert = CertificateDer::pem_slice_iter(&pem)
            .next()
            .context("no certificate in lab.crt")??;
        Ok(mojo_server::redfish::cert_sha256(cert.as_ref()))
    }

    /// Slot `idx`.
    pub fn slot(&self, idx: usize) -> &Slot {
        &self.slots[idx]
    }

    /// Every slot that runs a mock BMC (has `/lab/state`).
    pub fn bmcs(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.kind.starts_with("redfish"))
    }

    /// `/lab/state` of one slot (None for slots without a BMC). A BMC that does not answer
    /// fails the test: a lab that cannot be asked must not read as "no sessions open".
    pub async fn state_of(&self, slot: &Slot) -> Option<serde_json::Value> {
        if !slot.kind.starts_with("redfish") {
            return None;
        }
        Some(lab_state(slot).await.expect("lab state answers as JSON"))
    }

    /// Total of `sessions_open` over every BMC of the lab.
    pub async fn open_sessions(&self) -> i64 {
        let mut n = 0;
        for s in &self.slots {
            if let Some(st) = self.state_of(s).await {
                n += st["sessions_open"].as_i64().expect("sessions_open");
            }
        }
        n
    }

    fn stop(&self) {
        let _ = Command::new("bash")
            .arg(LAB)
            .arg("stop")
            .env("BMCLAB_STATE", self.state.path())
            .output();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Test-side HTTP client for `/lab/*` and ground truth (not the code under test).
pub fn lab_http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// `/lab/state` of a slot.
pub async fn lab_state(slot: &Slot) -> Result<serde_json::Value> {
    let url = format!("{}/lab/state", slot.base_url());
    Ok(lab_http()?.get(url).send().await?.json().await?)
}
