//! Emulated BMC labs for tests: each lab has its own state dir and address block and is stopped
//! when dropped, also when the test fails.
#![allow(dead_code)]

use std::process::Command;

/// The lab script, next to the repository.
pub const LAB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/redfish-lab/bmc-lab.sh"
);

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

/// A running lab.
pub struct Lab {
    pub state: tempfile::TempDir,
    pub slots: Vec<Slot>,
}

impl Lab {
    /// `bmc-lab.sh <cmd> N args...` with its own state dir.
    pub fn start(cmd: &str, n: usize, args: &[&str]) -> Lab {
        let state = tempfile::tempdir().expect("lab state dir");
        let out = Command::new("bash")
            .arg(LAB)
            .arg(cmd)
            .arg(n.to_string())
            .args(args)
            .env("BMCLAB_STATE", state.path())
            .output()
            .expect("run bmc-lab.sh");
        let mut lab = Lab {
            state,
            slots: Vec::new(),
        };
        assert!(
            out.status.success(),
            "bmc-lab.sh {cmd} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest =
            std::fs::read_to_string(lab.state.path().join("manifest.tsv")).expect("manifest");
        lab.slots = manifest
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Slot {
                    idx: f[0].parse().unwrap_or_default(),
                    ip: f[1].to_string(),
                    port: f[2].parse().unwrap_or_default(),
                    scheme: f[3].to_string(),
                    kind: f[4].to_string(),
                    user: f[5].to_string(),
                    password: f[6].to_string(),
                }
            })
            .collect();
        lab.wait_listening();
        lab
    }

    /// `start` can return a moment before the sockets accept: wait until every slot that
    /// should listen does (at most 20 s).
    fn wait_listening(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for s in self
            .slots
            .iter()
            .filter(|s| s.scheme != "-" && s.kind != "none")
        {
            let addr: std::net::SocketAddr = format!("{}:{}", s.ip, s.port)
                .parse()
                .expect("slot address");
            while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
                .is_err()
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "lab slot {} never listened",
                    s.ip
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// `/lab/state` of one slot (None for slots without a BMC). A BMC that does not answer
    /// fails the test: a lab that cannot be asked must not read as "no sessions open".
    pub async fn state_of(&self, slot: &Slot) -> Option<serde_json::Value> {
        if !slot.kind.starts_with("redfish") {
            return None;
        }
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("lab client");
        let url = format!("{}://{}:{}/lab/state", slot.scheme, slot.ip, slot.port);
        let resp = client.get(&url).send().await.expect("lab state answers");
        Some(resp.json().await.expect("lab state is JSON"))
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
