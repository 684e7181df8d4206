//! The scan job: probe every (address, port) of its ranges, bounded by `MOJO_SCAN_CONCURRENCY`
//! (and `MOJO_SCAN_RATE`), and write nodes and progress as results come in.
//!
//! The work is idempotent (nodes are upserted by endpoint), so a scan re-claimed after its
//! process died simply starts over.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::{json, Value};

use super::probe::RedfishProber;
use super::{addresses, endpoint_url, Prober};
use crate::db::jobs::Job;
use crate::db::nodes::{self, Seen};
use crate::db::scan_ranges::{self, ScanRange};
use crate::db::ScanRangeStatus;
use crate::db::{DbResult, Tx};
use crate::jobs::{JobContext, JobHandler, Outcome};
use crate::redfish::ProbeOutcome;

/// Kind of the scan job.
pub const KIND: &str = "scan";

/// How often live progress is written.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The scan job handler; `prober: None` builds the real prober from the configuration.
#[derive(Default)]
pub struct ScanJob {
    /// A prober to use instead of the real one (tests).
    pub prober: Option<Arc<dyn Prober>>,
}

impl ScanJob {
    /// A scan handler probing with `prober`.
    pub fn with_prober(prober: Arc<dyn Prober>) -> ScanJob {
        ScanJob {
            prober: Some(prober),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    scanned: u64,
    total: u64,
    found: u64,
    /// Registrations by zero-touch onboarding, when a range onboards.
    onboarded: Option<super::onboarding::Counts>,
}

impl Tally {
    fn json(self) -> Value {
        let p = json!({"scanned": self.scanned, "total": self.total, "found": self.found});
        match self.onboarded {
            Some(c) => c.into_progress(p),
            None => p,
        }
    }

    fn onboarded(&mut self, c: super::onboarding::Counts) {
        self.onboarded.get_or_insert_with(Default::default).add(c);
    }
}

impl JobHandler for ScanJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let prober: Arc<dyn Prober> = match &self.prober {
                Some(p) => p.clone(),
                None => {
                    match RedfishProber::new(Duration::from_millis(ctx.ctx.config.probe_timeout_ms))
                    {
                        Ok(p) => Arc::new(p),
                        Err(e) => return Outcome::Failed(format!("cannot build the prober: {e}")),
                    }
                }
            };
            match scan_job(ctx, prober).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(job = ctx.job.id, error = %e, "scan failed");
                    Outcome::Failed(format!("database error: {e}"))
                }
            }
        })
    }

    fn finish<'a>(
        &'a self,
        tx: &'a mut Tx,
        job: &'a Job,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, DbResult<()>> {
        Box::pin(async move { scan_ranges::release_job(tx, job.id, error).await })
    }
}

/// Addresses x ports of a range, saturating.
fn probe_count(from: IpAddr, to: IpAddr, ports: usize) -> u64 {
    u64::try_from(super::address_count(from, to))
        .unwrap_or(u64::MAX)
        .saturating_mul(ports as u64)
}

fn range_plan(r: &ScanRange) -> Option<(IpAddr, IpAddr)> {
    Some((r.ip_from.parse().ok()?, r.ip_to.parse().ok()?))
}

async fn scan_job(ctx: &JobContext, prober: Arc<dyn Prober>) -> DbResult<Outcome> {
    let db = &ctx.ctx.db;
    let ranges: Vec<ScanRange> = scan_ranges::get_many(db, &ctx.job.target_ids())
        .await?
        .into_iter()
        .filter(|r| r.job_id == Some(ctx.job.id) && r.status == ScanRangeStatus::Scanning)
        .collect();
    let mut job_tally = Tally::default();
    for r in &ranges {
        if let Some((a, b)) = range_plan(r) {
            job_tally.total = job_tally
                .total
                .saturating_add(probe_count(a, b, r.ports.len()));
        }
    }
    if !ctx.progress(&job_tally.json()).await? {
        return Ok(Outcome::Stopped);
    }
    let rate = ctx.ctx.config.scan_rate;
    let pacer = (rate > 0).then(|| {
        let mut iv = tokio::time::interval(Duration::from_secs(1) / rate);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Arc::new(tokio::sync::Mutex::new(iv))
    });
    let budget =
        Duration::from_millis(ctx.ctx.config.probe_timeout_ms) + Duration::from_millis(500);
    for range in ranges {
        let Some((from, to)) = range_plan(&range) else {
            let mut tx = db.begin().await?;
            scan_ranges::finish_scan(
                &mut tx,
                range.id,
                ctx.job.id,
                &range.progress,
                Some("invalid address range"),
                None,
            )
            .await?;
            tx.commit().await?;
            continue;
        };
        let ports = range.ports.clone();
        let mut tally = Tally {
            total: probe_count(from, to, ports.len()),
            ..Tally::default()
        };
        // The allowlist as this process has it now: it may have narrowed since the range was
        // written, or this replica may have another value. Addresses outside are not probed.
        let allowed = ctx.ctx.config.discovery_allowed_networks.clone();
        let skipped: u64 = if super::range_allowed(&allowed, from, to) {
            0
        } else {
            addresses(from, to)
                .filter(|ip| !allowed.contains(ip))
                .count() as u64
        };
        let skipped_probes = skipped.saturating_mul(ports.len() as u64);
        tally.scanned = skipped_probes;
        job_tally.scanned = job_tally.scanned.saturating_add(skipped_probes);
        let inside = allowed.clone();
        let targets = addresses(from, to)
            .filter(move |ip| inside.contains(ip))
            .flat_map(move |ip| ports.clone().into_iter().map(move |p| (ip, p)));
        let probes = futures::stream::iter(targets)
            .map(|(ip, port)| {
                let (prober, pacer) = (prober.clone(), pacer.clone());
                async move {
                    if let Some(p) = pacer {
                        p.lock().await.tick().await;
                    }
                    let outcome = tokio::time::timeout(budget, prober.probe(ip, port))
                        .await
                        .unwrap_or(ProbeOutcome::Timeout);
                    (ip, port, outcome)
                }
            })
            .buffer_unordered(ctx.ctx.config.scan_concurrency.max(1));
        futures::pin_mut!(probes);
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        let mut last_write = Instant::now();
        let mut range_gone = false;
        loop {
            let next = tokio::select! {
                _ = ctx.cancel.cancelled() => return Ok(Outcome::Stopped),
                n = probes.next() => n,
            };
            let Some((ip, port, outcome)) = next else {
                break;
            };
            tally.scanned += 1;
            job_tally.scanned += 1;
            ctx.ctx.metrics.add(
                "mojo_discovery_probes_total",
                "Discovery probes by outcome.",
                &[("outcome", outcome.kind())],
                1,
            );
            let written = match outcome {
                ProbeOutcome::Redfish(f) => {
                    tally.found += 1;
                    job_tally.found += 1;
                    seen.insert((ip.to_string(), i64::from(port)));
                    let s = Seen {
                        url: f.url,
                        ip_address: ip.to_string(),
                        port,
                        vendor: f.vendor,
                        product: f.product,
                        uuid: f.uuid,
                        redfish_version: f.redfish_version,
                        cert_sha256: f.cert_sha256,
                    };
                    nodes::upsert_seen(db, range.id, &s).await
                }
                ProbeOutcome::TlsError { message: msg } => {
                    seen.insert((ip.to_string(), i64::from(port)));
                    nodes::upsert_tls_error(
                        db,
                        range.id,
                        &endpoint_url("https", ip, port),
                        &ip.to_string(),
                        port,
                        &msg,
                    )
                    .await
                }
                ProbeOutcome::Closed { .. }
                | ProbeOutcome::Timeout
                | ProbeOutcome::NotRedfish { .. } => Ok(()),
            };
            match written {
                Ok(()) => {}
                // The range was deleted meanwhile: its scan ends here, the job goes on.
                Err(e) if e.is_foreign_key_violation() => {
                    tracing::info!(
                        job = ctx.job.id,
                        scan_range = range.id,
                        "scan range deleted during its scan"
                    );
                    range_gone = true;
                    break;
                }
                Err(e) => return Err(e),
            }
            if last_write.elapsed() >= PROGRESS_EVERY {
                last_write = Instant::now();
                scan_ranges::set_progress(db, range.id, ctx.job.id, &tally.json()).await?;
                if !ctx.progress(&job_tally.json()).await? {
                    return Ok(Outcome::Stopped);
                }
            }
        }
        if range_gone {
            continue;
        }
        // Endpoints this range found before that did not answer now.
        let silent: Vec<i64> = nodes::endpoints_of_range(db, range.id)
            .await?
            .into_iter()
            .filter(|(_, ip, port)| {
                let probed = ip.parse::<IpAddr>().ok().is_some_and(|a| {
                    super::address_count(from, a) > 0
                        && super::address_count(a, to) > 0
                        && allowed.contains(&a)
                }) && range.ports.iter().any(|p| i64::from(*p) == *port);
                probed && !seen.contains(&(ip.clone(), *port))
            })
            .map(|(id, _, _)| id)
            .collect();
        // Zero-touch onboarding of what the range found, when the range asks for it.
        if let Some(c) = super::onboarding::after_range_scan(ctx, range.id, &silent).await? {
            tally.onboarded(c);
            job_tally.onboarded(c);
        }
        if ctx.cancel.is_cancelled() {
            return Ok(Outcome::Stopped);
        }
        let mut tx = db.begin().await?;
        nodes::mark_unreachable(&mut tx, &silent).await?;
        let note = (skipped > 0).then(|| {
            format!("{skipped} address(es) outside MOJO_DISCOVERY_ALLOWED_NETWORKS were skipped")
        });
        scan_ranges::finish_scan(
            &mut tx,
            range.id,
            ctx.job.id,
            &tally.json(),
            None,
            note.as_deref(),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            job = ctx.job.id,
            scan_range = range.id,
            scanned = tally.scanned,
            found = tally.found,
            "range scanned"
        );
    }
    if !ctx.progress(&job_tally.json()).await? {
        return Ok(Outcome::Stopped);
    }
    Ok(Outcome::Succeeded)
}
