//! Mixed-load generator for a running server (see `bench/load.sh`):
//! `load <base-url> [clients] [seconds] [server-pid]`.
//!
//! Each client loops over a weighted mix: filtered/paged server lists, server and pool details,
//! PATCH of a server's name, `assign_servers` / `remove_from_pool` of a few servers, and token
//! refreshes. Clients PATCH and move only their own share of the servers, so the last name a
//! client got a 200 for is the name the server must show afterwards: every such server is read
//! back at the end ("lost writes"). Prints req/s, p50/p99 per operation and overall, the
//! status classes, and the CPU time of this generator beside the server's (from /proc, when
//! `server-pid` is given). Exits non-zero on any 5xx, transport error or lost write.
//! Credentials: `MOJO_LOAD_USER` / `MOJO_LOAD_PASSWORD` (admin / bench-admin-password).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

const OPS: &[&str] = &[
    "list_filter",
    "list_page",
    "server_detail",
    "pool_detail",
    "patch",
    "assign",
    "remove",
    "refresh",
];

#[derive(Default)]
struct Tally {
    lat: HashMap<&'static str, Vec<u32>>,
    status: HashMap<u16, u64>,
    transport: u64,
    /// One example per (operation, non-2xx status) and per transport error kind.
    samples: HashMap<(&'static str, u16), String>,
    last_name: HashMap<i64, String>,
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

struct Shared {
    base: String,
    http: reqwest::Client,
    refresh: String,
    access: String,
    pools: Vec<i64>,
    filter_pool: i64,
    pages: usize,
}

fn pct(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    f64::from(v[i]) / 1000.0
}

async fn client(sh: Arc<Shared>, me: usize, mine: Vec<i64>, until: Instant) -> Tally {
    let mut t = Tally::default();
    let mut access = sh.access.clone();
    let mut rng = fastrand(me as u64 + 1);
    let mut seq = 0u64;
    while Instant::now() < until {
        let roll = rng.next() % 100;
        let pick = |r: &mut Rng, v: &[i64]| v[(r.next() % v.len() as u64) as usize];
        let (op, method, path, body): (&'static str, reqwest::Method, String, Option<Value>) =
            match roll {
                0..=24 => (
                    "list_filter",
                    reqwest::Method::GET,
                    format!(
                        "/api/server/?search=PowerEdge&resource_pool={}&ordering=name&page_size=50",
                        sh.filter_pool
                    ),
                    None,
                ),
                25..=39 => (
                    "list_page",
                    reqwest::Method::GET,
                    format!(
                        "/api/server/?page={}&page_size=50&ordering=-id",
                        1 + rng.next() % sh.pages as u64
                    ),
                    None,
                ),
                40..=59 => (
                    "server_detail",
                    reqwest::Method::GET,
                    format!("/api/server/{}/", pick(&mut rng, &mine)),
                    None,
                ),
                60..=64 => (
                    "pool_detail",
                    reqwest::Method::GET,
                    format!("/api/pool/{}/", pick(&mut rng, &sh.pools)),
                    None,
                ),
                65..=84 => {
                    seq += 1;
                    let id = pick(&mut rng, &mine);
                    (
                        "patch",
                        reqwest::Method::PATCH,
                        format!("/api/server/{id}/"),
                        Some(json!({"name": format!("load-c{me}-{seq}")})),
                    )
                }
                85..=91 => {
                    let ids: Vec<i64> = (0..5).map(|_| pick(&mut rng, &mine)).collect();
                    (
                        "assign",
                        reqwest::Method::POST,
                        format!("/api/pool/{}/assign_servers/", pick(&mut rng, &sh.pools)),
                        Some(json!({"servers": ids})),
                    )
                }
                92..=95 => {
                    let ids: Vec<i64> = (0..5).map(|_| pick(&mut rng, &mine)).collect();
                    (
                        "remove",
                        reqwest::Method::POST,
                        "/api/server/remove_from_pool/".into(),
                        Some(json!({"servers": ids})),
                    )
                }
                _ => (
                    "refresh",
                    reqwest::Method::POST,
                    "/api/token/refresh/".into(),
                    Some(json!({"refresh": sh.refresh})),
                ),
            };
        let mut req = sh
            .http
            .request(method, format!("{}{path}", sh.base))
            .bearer_auth(&access);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let started = Instant::now();
        let resp = req.send().await;
        let (status, bytes) = match resp {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.bytes().await.ok())
            }
            Err(e) => {
                t.transport += 1;
                t.samples.entry((op, 0)).or_insert_with(|| format!("{e:?}"));
                continue;
            }
        };
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        t.lat.entry(op).or_default().push(micros);
        *t.status.entry(status).or_default() += 1;
        if !(200..300).contains(&status) {
            t.samples.entry((op, status)).or_insert_with(|| {
                let b = bytes
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                b.chars().take(200).collect()
            });
        }
        if status == 200 {
            if op == "patch" {
                let id: i64 = path
                    .trim_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let name = body.unwrap()["name"].as_str().unwrap().to_string();
                t.last_name.insert(id, name);
            } else if op == "refresh" {
                if let Some(a) = bytes
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .and_then(|v| v["access"].as_str().map(str::to_string))
                {
                    access = a;
                }
            }
        }
    }
    t
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
fn fastrand(seed: u64) -> Rng {
    Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let r = http.get(url).bearer_auth(token).send().await?;
    if !r.status().is_success() {
        bail!("GET {url}: {}", r.status());
    }
    Ok(r.json().await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .context("usage: load <base-url> [clients] [seconds] [server-pid]")?;
    let clients: usize = args.get(2).map_or(Ok(200), |s| s.parse())?;
    let secs: u64 = args.get(3).map_or(Ok(60), |s| s.parse())?;
    let server_pid = args.get(4).cloned();
    let user = std::env::var("MOJO_LOAD_USER").unwrap_or_else(|_| "admin".into());
    let password =
        std::env::var("MOJO_LOAD_PASSWORD").unwrap_or_else(|_| "bench-admin-password".into());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        // Below the server's idle timeout (60 s), so a pooled connection is never reused just
        // as the server closes it.
        .pool_idle_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .build()?;

    let tok: Value = http
        .post(format!("{base}/api/token/"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let access = tok["access"]
        .as_str()
        .context("no access token")?
        .to_string();
    let refresh = tok["refresh"]
        .as_str()
        .context("no refresh token")?
        .to_string();
    let mut ids = Vec::new();
    let mut page = 1;
    loop {
        let v = get_json(
            &http,
            &format!("{base}/api/server/?page={page}&page_size=1000&ordering=id"),
            &access,
        )
        .await?;
        for s in v["results"].as_array().context("results")? {
            ids.push(s["id"].as_i64().context("id")?);
        }
        if v["next"].is_null() {
            break;
        }
        page += 1;
    }
    let pv = get_json(
        &http,
        &format!("{base}/api/pool/?page_size=1000&ordering=id"),
        &access,
    )
    .await?;
    let pools: Vec<i64> = pv["results"]
        .as_array()
        .context("pools")?
        .iter()
        .filter_map(|p| p["id"].as_i64())
        .collect();
    if ids.len() < clients || pools.is_empty() {
        bail!(
            "need at least {clients} servers and one pool (have {} and {})",
            ids.len(),
            pools.len()
        );
    }
    println!(
        "load: {clients} clients for {secs} s against {} servers in {} pools at {base}",
        ids.len(),
        pools.len()
    );
    let sh = Arc::new(Shared {
        base: base.clone(),
        http: http.clone(),
        refresh,
        access: access.clone(),
        filter_pool: pools[0],
        pools,
        pages: ids.len().div_ceil(50),
    });
    let me = std::process::id().to_string();
    let (gen0, srv0) = (cpu_secs(&me), server_pid.as_deref().and_then(cpu_secs));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mine: Vec<i64> = ids.iter().copied().skip(c).step_by(clients).collect();
        tasks.push(tokio::spawn(client(sh.clone(), c, mine, until)));
    }
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await?;
        for (op, v) in t.lat {
            all.lat.entry(op).or_default().extend(v);
        }
        for (s, n) in t.status {
            *all.status.entry(s).or_default() += n;
        }
        all.transport += t.transport;
        for (k, v) in t.samples {
            all.samples.entry(k).or_insert(v);
        }
        all.last_name.extend(t.last_name);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (gen1, srv1) = (cpu_secs(&me), server_pid.as_deref().and_then(cpu_secs));

    let mut every: Vec<u32> = Vec::new();
    for op in OPS {
        if let Some(v) = all.lat.get_mut(op) {
            every.extend_from_slice(v);
            let n = v.len();
            println!(
                "  {op:<14} {n:>8} req  {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
                n as f64 / elapsed,
                pct(v, 0.50),
                pct(v, 0.99)
            );
        }
    }
    let total = every.len();
    println!(
        "  {:<14} {total:>8} req  {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        "all",
        total as f64 / elapsed,
        pct(&mut every, 0.50),
        pct(&mut every, 0.99)
    );
    let mut statuses: Vec<_> = all.status.iter().collect();
    statuses.sort();
    let five: u64 = all
        .status
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    println!(
        "  statuses {statuses:?}  5xx {five}  transport errors {}",
        all.transport
    );
    let mut samples: Vec<_> = all.samples.iter().collect();
    samples.sort();
    for ((op, status), body) in samples {
        let what = if *status == 0 {
            "transport error".to_string()
        } else {
            status.to_string()
        };
        println!("    e.g. {op} {what}: {body}");
    }
    let cpu = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!(
            "{:.1} s ({:.0}% of one core)",
            b - a,
            (b - a) / elapsed * 100.0
        ),
        _ => "n/a".into(),
    };
    println!(
        "  CPU: generator {}  server {}",
        cpu(gen0, gen1),
        cpu(srv0, srv1)
    );

    // Every name a PATCH got a 200 for must be what the server shows now.
    let checks: Vec<(i64, String)> = all.last_name.into_iter().collect();
    let n_checks = checks.len();
    let checks = Arc::new(tokio::sync::Mutex::new(checks));
    let mut readers = Vec::new();
    for _ in 0..32 {
        let (checks, http, base, access) =
            (checks.clone(), http.clone(), base.clone(), access.clone());
        readers.push(tokio::spawn(async move {
            let mut lost = Vec::new();
            loop {
                let Some((id, want)) = checks.lock().await.pop() else {
                    break;
                };
                let got = get_json(&http, &format!("{base}/api/server/{id}/"), &access)
                    .await
                    .map(|v| v["name"].as_str().unwrap_or("").to_string())
                    .unwrap_or_else(|e| format!("error: {e}"));
                if got != want {
                    lost.push((id, want, got));
                }
            }
            lost
        }));
    }
    let mut lost = Vec::new();
    for r in readers {
        lost.extend(r.await?);
    }
    println!(
        "  lost writes: {} of {n_checks} servers PATCHed",
        lost.len()
    );
    for (id, want, got) in lost.iter().take(5) {
        println!("    server {id}: wrote {want:?}, reads {got:?}");
    }
    if five > 0 || all.transport > 0 || !lost.is_empty() {
        bail!(
            "load run failed: {five} 5xx, {} transport errors, {} lost writes",
            all.transport,
            lost.len()
        );
    }
    Ok(())
}
