//! The Redfish client against emulated BMCs (shared/redfish-lab) on 127.0.60.x-127.0.69.x only.
//!
//! Each test starts its own lab (own state dir, own address range) and stops it in a drop guard,
//! also when the test fails. After every test that logs in, each BMC reports no open session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mojo_server::redfish::{
    self, BmcClient, BmcClientConfig, CaBundle, FirmwareType, ProbeOptions, ProbeOutcome,
    RedfishError, Scheme,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod lab;

use lab::{lab_http, lab_state, Lab, Slot};

const PORT: u16 = 9443;

/// A lab of `count` slots from `base` on [`PORT`].
fn start_lab(command: &str, count: usize, base: &str, extra: &[&str]) -> Result<Lab> {
    Lab::start_on(command, count, base, PORT, extra)
}

fn base_url(slot: &Slot) -> String {
    slot.base_url()
}

async fn assert_no_open_sessions(lab: &Lab) -> Result<()> {
    for slot in lab.bmcs() {
        let state = lab_state(slot).await?;
        assert_eq!(
            state["sessions_open"], 0,
            "slot {} ({}) has open sessions: {}",
            slot.idx, slot.ip, state["sessions"]
        );
    }
    Ok(())
}

fn pinned_config(slot: &Slot, fingerprint: &str) -> BmcClientConfig {
    let mut config = BmcClientConfig::new(base_url(slot));
    config.cert_sha256 = Some(fingerprint.to_string());
    config
}

fn creds(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect()
}

#[tokio::test]
async fn probe_finds_redfish_bmcs_with_identity_and_fingerprint() -> Result<()> {
    let lab = start_lab("start", 3, "127.0.60.1", &["--persona", "dell"])?;
    let fingerprint = lab.cert_sha256()?;
    let opts = ProbeOptions::new()?;
    let mut uuids = Vec::new();
    for slot in &lab.slots {
        let outcome = redfish::probe(slot.ip_addr(), slot.port, &opts).await;
        let Some(info) = outcome.redfish() else {
            bail!("slot {}: expected a BMC, got {outcome:?}", slot.idx);
        };
        assert_eq!(info.scheme, Scheme::Https);
        assert_eq!(info.url, format!("https://{}:{PORT}", slot.ip));
        assert_eq!(info.vendor.as_deref(), Some("Dell"));
        assert_eq!(
            info.product.as_deref(),
            Some("Integrated Dell Remote Access Controller")
        );
        assert_eq!(info.redfish_version.as_deref(), Some("1.15.0"));
        assert_eq!(info.cert_sha256.as_deref(), Some(fingerprint.as_str()));
        let root: Value = lab_http()?
            .get(format!("{}/redfish/v1/", base_url(slot)))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(info.uuid.as_deref(), root["UUID"].as_str());
        uuids.push(info.uuid.clone());
    }
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 3, "every BMC has its own UUID");
    assert_no_open_sessions(&lab).await
}

#[tokio::test]
async fn probe_classifies_the_mixed_slots_within_budget() -> Result<()> {
    let lab = start_lab("start-mixed", 10, "127.0.61.1", &["--persona", "dell"])?;
    let opts = ProbeOptions::new()?;
    let budget = opts.timeout;
    let started = Instant::now();
    let probes = lab.slots.iter().map(|slot| {
        let opts = opts.clone();
        async move {
            let t = Instant::now();
            let outcome = redfish::probe(slot.ip_addr(), slot.port, &opts).await;
            (slot, outcome, t.elapsed())
        }
    });
    let results = futures::future::join_all(probes).await;
    let total = started.elapsed();
    for (slot, outcome, elapsed) in &results {
        let label = format!(
            "slot {} ({}): {outcome:?} in {elapsed:?}",
            slot.idx, slot.kind
        );
        match (slot.kind.as_str(), slot.scheme.as_str()) {
            ("redfish", "https") | ("redfish-slow", _) => {
                let info = outcome.redfish().context(label.clone())?;
                assert_eq!(info.scheme, Scheme::Https, "{label}");
                assert!(info.cert_sha256.is_some(), "{label}");
                if slot.kind == "redfish-slow" {
                    assert!(*elapsed >= Duration::from_millis(800), "{label}");
                }
            }
            ("redfish", "http") => {
                let info = outcome.redfish().context(label.clone())?;
                assert_eq!(info.scheme, Scheme::Http, "{label}");
                assert_eq!(info.url, format!("http://{}:{PORT}", slot.ip), "{label}");
                assert_eq!(info.cert_sha256, None, "{label}");
            }
            ("none", _) => assert!(matches!(outcome, ProbeOutcome::Closed { .. }), "{label}"),
            ("decoy", _) => {
                assert!(
                    matches!(outcome, ProbeOutcome::NotRedfish { .. }),
                    "{label}"
                )
            }
            ("blackhole", _) => {
                assert_eq!(*outcome, ProbeOutcome::Timeout, "{label}");
                assert!(*elapsed < budget + Duration::from_millis(300), "{label}");
            }
            other => bail!("unexpected slot kind {other:?}"),
        }
    }
    assert!(
        total < budget + Duration::from_millis(500),
        "a scan is bounded by the probe budget, took {total:?}"
    );
    assert_no_open_sessions(&lab).await
}

/// A peer that answers every ClientHello with a fatal `protocol_version` alert, as a BMC that only
/// speaks TLS 1.0 does; and one that answers with garbage.
#[tokio::test]
async fn probe_reports_refused_tls_and_garbage() -> Result<()> {
    async fn serve_once(addr: SocketAddr, reply: &'static [u8]) -> Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
                let _ = stream.shutdown().await;
            }
        });
        Ok(local)
    }
    let opts = ProbeOptions::new()?;
    let alert = serve_once(
        "127.0.67.1:0".parse()?,
        &[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46],
    )
    .await?;
    match redfish::probe(alert.ip(), alert.port(), &opts).await {
        ProbeOutcome::TlsError { message } => {
            assert!(message.starts_with("TLS: "), "{message}");
            assert!(message.contains("ProtocolVersion"), "{message}");
        }
        other => bail!("expected a TLS error, got {other:?}"),
    }
    let garbage = serve_once("127.0.67.2:0".parse()?, b"SSH-2.0-OpenSSH_9.2\r\n").await?;
    assert!(matches!(
        redfish::probe(garbage.ip(), garbage.port(), &opts).await,
        ProbeOutcome::NotRedfish { .. }
    ));
    let json_not_redfish = serve_once(
        "127.0.67.3:0".parse()?,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}",
    )
    .await?;
    assert!(matches!(
        redfish::probe(json_not_redfish.ip(), json_not_redfish.port(), &opts).await,
        ProbeOutcome::NotRedfish { .. }
    ));
    Ok(())
}

#[tokio::test]
async fn probe_scans_a_slash_24_with_50_bmcs_quickly() -> Result<()> {
    let lab = start_lab(
        "start",
        50,
        "127.0.66.1",
        &["--single-process", "--persona", "dell"],
    )?;
    let opts = ProbeOptions::new()?;
    let started = Instant::now();
    let probes = (0..=255u8).map(|last| {
        let opts = opts.clone();
        async move {
            redfish::probe(
                IpAddr::V4(Ipv4Addr::new(127, 0, 66, last)),
                PORT,
                &opts,
            )
            .await
        }
    });
    let outcomes = futures::future::join_all(probes).await;
    let elapsed = started.elapsed();
    let found = outcomes.iter().filter(|o| o.redfish().is_some()).count();
    eprintln!("scan of 256 addresses found {found} BMCs in {elapsed:?}");
    assert_eq!(found, lab.slots.len());
    // The goal is well under 1 s; the bound leaves room for a loaded 2-core CI machine.
    assert!(elapsed < Duration::from_secs(3), "scan took {elapsed:?}");
    Ok(())
}

#[tokio::test]
async fn login_tries_each_credential_once_and_always_logs_out() -> Result<()> {
    let lab = start_lab("start-mixed", 10, "127.0.62.1", &["--persona", "dell"])?;
    let fingerprint = lab.cert_sha256()?;
    let default = lab.slot(0);
    let alt = lab.slot(2);
    assert_eq!(alt.user, "admin");
    let list = creds(&[
        (&default.user, &default.password),
        (&alt.user, &alt.password),
    ]);

    // Default credentials work on slot 0 at once.
    let client = BmcClient::new(pinned_config(default, &fingerprint))?;
    let (index, systems) = client
        .with_session(&list, |session| async move {
            session.get_json("/redfish/v1/Systems").await
        })
        .await?;
    assert_eq!(index, 0);
    assert!(systems?["Members"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(lab_state(default).await?["failed_logins"], 0);

    // Slot 2 only knows the alternate credentials: one failed attempt, then success.
    let client = BmcClient::new(pinned_config(alt, &fingerprint))?;
    let session = client.login(&list).await?;
    assert_eq!(session.credential_index(), 1);
    assert_eq!(session.username(), "admin");
    assert!(!session.uses_basic_auth());
    assert_eq!(lab_state(alt).await?["sessions_open"], 1);
    session.logout().await?;
    session.logout().await?; // idempotent
    let state = lab_state(alt).await?;
    assert_eq!(state["sessions_open"], 0);
    assert_eq!(
        state["failed_logins"], 1,
        "the wrong credential is tried once"
    );

    // None accepted: each credential is tried exactly once, the error says so.
    let slot8 = lab.slot(8);
    let client = BmcClient::new(pinned_config(slot8, &fingerprint))?;
    let wrong = creds(&[("root", "calvin"), ("admin", "wrong"), ("nobody", "x")]);
    let error = client.login(&wrong).await.expect_err("no credential works");
    assert!(
        matches!(error, RedfishError::NoCredentialAccepted),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "no credential accepted");
    let state = lab_state(slot8).await?;
    assert_eq!(state["failed_logins"], 3);
    assert_eq!(state["requests"]["POST"], 3);
    assert!(matches!(
        client.login::<String, String>(&[]).await,
        Err(RedfishError::NoCredentials)
    ));

    // Plain HTTP BMC: refused unless allowed.
    let http = lab.slot(3);
    assert_eq!(http.scheme, "http");
    assert!(matches!(
        BmcClient::new(BmcClientConfig::new(base_url(http))),
        Err(RedfishError::HttpNotAllowed)
    ));
    let mut config = BmcClientConfig::new(base_url(http));
    config.allow_http = true;
    let (index, _) = BmcClient::new(config)?
        .with_session(&list, |_session| async {})
        .await?;
    assert_eq!(index, 0);

    // A BMC that accepts TCP and never answers: bounded by the deadline, no credential burnt.
    let blackhole = lab.slot(7);
    let mut config = BmcClientConfig::new(format!("https://{}:{}", blackhole.ip, blackhole.port));
    config.cert_sha256 = Some(fingerprint.clone());
    config.deadline = Some(tokio::time::Instant::now() + Duration::from_millis(800));
    let started = Instant::now();
    let error = BmcClient::new(config)?
        .login(&list)
        .await
        .expect_err("blackhole");
    assert!(matches!(error, RedfishError::DeadlineExceeded), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Work that fails still logs out.
    let client = BmcClient::new(pinned_config(default, &fingerprint))?;
    let (_, result) = client
        .with_session(&list, |session| async move {
            session.get_json("/redfish/v1/NoSuchThing").await
        })
        .await?;
    let error = result.expect_err("404");
    assert_eq!(error.to_string(), "GET /redfish/v1/NoSuchThing: HTTP 404");

    assert_no_open_sessions(&lab).await
}

#[tokio::test]
async fn pinned_fingerprint_mismatch_is_refused_before_any_credential() -> Result<()> {
    let lab = start_lab(
        "start",
        2,
        "127.0.64.1",
        &["--persona", "hpe", "--cert-per-bmc"],
    )?;
    let slot = lab.slot(0);
    let other_cert = {
        let pem = std::fs::read(lab.path(&format!("bmc-{}.crt", lab.slot(1).ip)))?;
        let cert = CertificateDer::pem_slice_iter(&pem)
            .next()
            .context("no cert")??;
        redfish::cert_sha256(cert.as_ref())
    };
    let client = BmcClient::new(pinned_config(slot, &other_cert))?;
    let error = client
        .login(&creds(&[("root", "calvin")]))
        .await
        .expect_err("pin mismatch");
    assert!(
        matches!(error, RedfishError::CertificateChanged { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("certificate changed since discovery"),
        "{error}"
    );
    assert!(!error.to_string().contains("calvin"));
    let state = lab_state(slot).await?;
    assert_eq!(state["failed_logins"], 0);
    assert_eq!(state["sessions_open"], 0);
    assert_eq!(
        state["requests"],
        serde_json::json!({}),
        "no request reached the BMC"
    );

    // The right pin works; so does strict verification with the lab CA and no pin.
    let opts = ProbeOptions::new()?;
    let info = redfish::probe(slot.ip_addr(), slot.port, &opts)
        .await
        .redfish()
        .cloned()
        .context("probe")?;
    let pin = info.cert_sha256.context("fingerprint")?;
    let (index, _) = BmcClient::new(pinned_config(slot, &pin))?
        .with_session(&creds(&[("root", "calvin")]), |_s| async {})
        .await?;
    assert_eq!(index, 0);
    let mut config = BmcClientConfig::new(base_url(slot));
    config.ca_bundle = Some(CaBundle::from_file(&lab.path("ca.crt"))?);
    BmcClient::new(config)?
        .with_session(&creds(&[("root", "calvin")]), |_s| async {})
        .await?;

    // A session dropped without logout is still deleted (drop guard, in the background).
    let session = BmcClient::new(pinned_config(slot, &pin))?
        .login(&creds(&[("root", "calvin")]))
        .await?;
    assert_eq!(lab_state(slot).await?["sessions_open"], 1);
    drop(session);
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab_state(slot).await?["sessions_open"] != 0 {
        assert!(Instant::now() < deadline, "dropped session was not deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_no_open_sessions(&lab).await
}

#[tokio::test]
async fn full_sessions_fall_back_to_basic_auth() -> Result<()> {
    let lab = start_lab(
        "start",
        1,
        "127.0.65.1",
        &["--max-sessions", "0", "--mockups", "public-tower"],
    )?;
    let slot = lab.slot(0);
    let pin = lab.cert_sha256()?;
    let client = BmcClient::new(pinned_config(slot, &pin))?;
    let (index, inventory) = client
        .with_session(
            &creds(&[("root", "wrong"), ("root", "calvin")]),
            |session| async move {
                assert!(session.uses_basic_auth());
                assert_eq!(session.session_url(), None);
                redfish::read_inventory(&session).await
            },
        )
        .await?;
    assert_eq!(index, 1);
    assert_eq!(inventory?.systems.len(), 1);
    let state = lab_state(slot).await?;
    assert_eq!(state["failed_logins"], 1, "{state}");
    assert_no_open_sessions(&lab).await
}

#[tokio::test]
async fn inventory_from_each_mockup() -> Result<()> {
    let lab = start_lab(
        "start",
        3,
        "127.0.63.1",
        &[
            "--persona",
            "dell",
            "--mockups",
            "public-rackmount1,public-tower,public-localstorage",
        ],
    )?;
    let pin = lab.cert_sha256()?;
    let list = creds(&[("root", "calvin")]);
    let mut inventories = Vec::new();
    for slot in &lab.slots {
        let client = BmcClient::new(pinned_config(slot, &pin))?;
        let started = Instant::now();
        let (_, inventory) = client
            .with_session(&list, |session| async move {
                redfish::read_inventory(&session).await
            })
            .await?;
        eprintln!("slot {} inventory in {:?}", slot.idx, started.elapsed());
        let inventory = inventory?;
        let state = lab_state(slot).await?;
        assert_eq!(inventory.systems.len(), 1, "slot {}", slot.idx);
        let system = &inventory.systems[0];
        let truth = &state["systems"][&system.odata_id];
        assert_eq!(system.power_state.as_deref(), truth["PowerState"].as_str());
        assert_eq!(system.bios_version.as_deref(), Some("1.13.2"));
        assert_eq!(system.manufacturer.as_deref(), Some("Dell Inc."));
        assert_eq!(system.model.as_deref(), Some("PowerEdge R650"));
        assert!(system
            .serial_number
            .as_deref()
            .is_some_and(|s| s.len() == 7));
        assert!(system.uuid.is_some());
        assert!(system.memory_gib.is_some_and(|m| m > 0.0));
        assert!(system.processor_count.is_some_and(|c| c > 0));
        assert_eq!(system.health.as_deref(), Some("OK"));
        let cpu = system
            .processors
            .iter()
            .find(|p| p.processor_type.as_deref() == Some("CPU"))
            .context("a CPU")?;
        assert!(cpu.socket.is_some() && cpu.model.is_some());
        assert!(cpu.total_cores.is_some_and(|c| c > 0));
        assert!(cpu.max_speed_mhz.is_some());
        assert!(!system.ethernet_interfaces.is_empty());
        assert!(system
            .ethernet_interfaces
            .iter()
            .all(|e| e.mac_address.as_deref().is_some_and(|m| m.len() == 17)));
        inventories.push(inventory);
    }

    // public-rackmount1: SimpleStorage only, four firmware components.
    let rack = &inventories[0];
    let system = &rack.systems[0];
    assert_eq!(system.processors.len(), 3, "CPU1, CPU2, FPGA1");
    assert_eq!(system.storages.len(), 1);
    let simple = &system.storages[0];
    assert!(simple.simple);
    assert_eq!(simple.drives.len(), 2, "absent bays are skipped");
    assert_eq!(simple.drives[0].capacity_bytes, Some(8_000_000_000_000));
    let nic = system
        .ethernet_interfaces
        .iter()
        .find(|e| e.id.as_deref() == Some("12446A3B0411"))
        .context("NIC 12446A3B0411")?;
    assert_eq!(nic.speed_mbps, Some(1000));
    assert_eq!(nic.link_status.as_deref(), Some("LinkUp"));
    // The mockup's configured host address: data only, outside the lab and never contacted.
    assert_eq!(nic.ipv4_addresses, vec!["192.168.0.10".to_string()]); // data outside the lab
    let mut kinds: Vec<(String, FirmwareType)> = rack
        .firmwares
        .iter()
        .map(|f| (f.component_id.clone().unwrap_or_default(), f.firmware_type))
        .collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    // (AC-RoT0 has a document in the mockup but is not a member of the collection.)
    assert_eq!(
        kinds,
        vec![
            ("BIOS".to_string(), FirmwareType::Bios),
            ("BMC".to_string(), FirmwareType::Bmc),
            ("SS".to_string(), FirmwareType::Storage),
        ]
    );
    let bios = rack
        .firmwares
        .iter()
        .find(|f| f.firmware_type == FirmwareType::Bios)
        .context("BIOS firmware")?;
    assert_eq!(bios.version.as_deref(), Some("1.13.2"));
    assert_eq!(bios.updateable, Some(true));

    // public-tower: several Storage subsystems with drives (under Chassis) and volumes.
    let tower = &inventories[1];
    let storages = &tower.systems[0].storages;
    assert!(storages.len() >= 3, "{storages:?}");
    let raid = storages
        .iter()
        .find(|s| s.id.as_deref() == Some("RAIDIntegrated"))
        .context("RAIDIntegrated")?;
    assert!(!raid.simple);
    assert_eq!(raid.controllers.len(), 1);
    assert_eq!(
        raid.controllers[0].firmware_version.as_deref(),
        Some("23.13.06.0006")
    );
    assert_eq!(raid.drives.len(), 4, "absent bays are skipped");
    assert!(raid.drives.iter().all(|d| d.capacity_bytes.is_some()));
    assert_eq!(raid.volumes.len(), 2);
    assert!(raid
        .volumes
        .iter()
        .any(|v| v.raid_type.as_deref() == Some("RAID5")));
    assert_eq!(tower.firmwares.len(), 2);

    // public-localstorage: one Storage with 4 drives and 3 volumes; no UpdateService.
    let local = &inventories[2];
    let storage = &local.systems[0].storages;
    assert_eq!(storage.len(), 1);
    assert_eq!(storage[0].drives.len(), 4);
    assert_eq!(storage[0].volumes.len(), 3);
    let drive = &storage[0].drives[0];
    assert!(
        drive.media_type.is_some() && drive.protocol.is_some() && drive.serial_number.is_some()
    );
    assert!(local.firmwares.is_empty());

    assert_no_open_sessions(&lab).await
}

/// A hand-written BMC with odd answers: a session `Location` on another host, a collection member
/// on another host, a redirect, a property of the wrong type, no UpdateService.
#[tokio::test]
async fn foreign_urls_and_odd_fields_are_refused_or_degraded() -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    // A second address that must never be contacted, however the BMC's answers point at it.
    let foreign_listener = tokio::net::TcpListener::bind("127.0.68.99:0").await?;
    let foreign = format!("http://{}", foreign_listener.local_addr()?);
    let foreign_hits = Arc::new(AtomicUsize::new(0));
    let hits = foreign_hits.clone();
    tokio::spawn(async move {
        while foreign_listener.accept().await.is_ok() {
            hits.fetch_add(1, Ordering::SeqCst);
        }
    });
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.68.1:0").await?;
    let addr = listener.local_addr()?;
    let log = seen.clone();
    let foreign_url = foreign.clone();
    tokio::spawn(async move {
        let foreign = foreign_url;
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            let head_end = loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while raw.len() < head_end + length {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
            }
            let request_line = head.lines().next().unwrap_or("").to_string();
            let token = head.to_ascii_lowercase().contains("x-auth-token: tok");
            log.lock()
                .unwrap()
                .push(format!("{request_line} token={token}"));
            let mut parts = request_line.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, extra, body) = match (method, path) {
                ("GET", "/redfish/v1/") => ("200 OK", String::new(), serde_json::json!({
                    "RedfishVersion": "1.6.0",
                    "Systems": {"@odata.id": "/redfish/v1/Systems"},
                    "UpdateService": {"@odata.id": "/redfish/v1/UpdateService"},
                    "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}
                })),
                ("POST", "/redfish/v1/SessionService/Sessions") => (
                    "201 Created",
                    format!("X-Auth-Token: tok\r\nLocation: {foreign}/redfish/v1/SessionService/Sessions/1\r\n"),
                    serde_json::json!({"@odata.id": "/redfish/v1/SessionService/Sessions/1", "Id": "1"}),
                ),
                ("GET", "/redfish/v1/Systems") => ("200 OK", String::new(), serde_json::json!({"Members": [
                    {"@odata.id": "/redfish/v1/Systems/1"},
                    {"@odata.id": format!("{foreign}/redfish/v1/Systems/2")},
                    {"@odata.id": "/redfish/v1/Systems/3"}
                ], "Members@odata.nextLink": "/redfish/v1/Systems?page=2"})),
                ("GET", "/redfish/v1/Systems?page=2") => ("200 OK", String::new(), serde_json::json!({"Members": [
                    {"@odata.id": "/redfish/v1/Systems/4"}
                ]})),
                ("GET", "/redfish/v1/Systems/4") => ("200 OK", String::new(), serde_json::json!({
                    "@odata.id": "/redfish/v1/Systems/4", "Id": "4", "Model": "M4"
                })),
                ("GET", "/redfish/v1/Systems/1") => ("200 OK", String::new(), serde_json::json!({
                    "@odata.id": "/redfish/v1/Systems/1", "Id": "1", "Manufacturer": 123, "Model": "M",
                    "PowerState": "On", "MemorySummary": {"TotalSystemMemoryGiB": "lots"},
                    "ProcessorSummary": {"Count": 2}, "Status": "OK",
                    "Processors": {"@odata.id": "/redfish/v1/Systems/1/Processors"}
                })),
                ("GET", "/redfish/v1/Systems/3") => (
                    "302 Found",
                    format!("Location: {foreign}/redfish/v1/Systems/3\r\n"),
                    serde_json::json!({}),
                ),
                ("DELETE", "/redfish/v1/SessionService/Sessions/1") => ("204 No Content", String::new(), Value::Null),
                _ => ("404 Not Found", String::new(), serde_json::json!({"error": {}})),
            };
            let body = if body.is_null() {
                String::new()
            } else {
                body.to_string()
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });

    let mut config = BmcClientConfig::new(format!("http://{addr}"));
    config.allow_http = true;
    let client = BmcClient::new(config)?;
    let session = client.login(&creds(&[("root", "pw")])).await?;
    assert_eq!(
        session.session_url(),
        Some(format!("http://{addr}/redfish/v1/SessionService/Sessions/1").as_str()),
        "the foreign Location is refused, the local @odata.id used"
    );
    assert!(matches!(
        session
            .get_json(&format!("{foreign}/redfish/v1/Systems"))
            .await,
        Err(RedfishError::ForeignUrl(_))
    ));
    assert!(matches!(
        session.get_json("/redfish/v1/Systems/3").await,
        Err(RedfishError::Redirect { status: 302, .. })
    ));
    let inventory = redfish::read_inventory(&session).await?;
    session.logout().await?;

    assert_eq!(
        inventory.systems.len(),
        2,
        "foreign and redirected members are skipped; the collection's second page is read"
    );
    assert_eq!(inventory.systems[1].model.as_deref(), Some("M4"));
    let system = &inventory.systems[0];
    assert_eq!(system.manufacturer, None);
    assert_eq!(system.model.as_deref(), Some("M"));
    assert_eq!(system.memory_gib, None);
    assert_eq!(system.processor_count, Some(2));
    assert_eq!(system.health, None);
    assert!(system.processors.is_empty());
    assert!(inventory.firmwares.is_empty());

    let seen = seen.lock().unwrap().clone();
    assert_eq!(foreign_hits.load(Ordering::SeqCst), 0, "{seen:?}");
    assert!(
        seen.contains(
            &"DELETE /redfish/v1/SessionService/Sessions/1 HTTP/1.1 token=true".to_string()
        ),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"GET /redfish/v1/Systems/1 HTTP/1.1 token=true".to_string()),
        "{seen:?}"
    );
    Ok(())
}
