//! Discovery through HTTP against emulated BMCs: scan ranges, scans, nodes, auth profiles,
//! credentials and registration, on both backends. Address blocks 127.0.70.x-127.0.99.x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;

use std::time::{Duration, Instant};

use lab::Lab;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An address block of this file for one test on one backend.
fn block(app: &common::TestApp, base: u8) -> u8 {
    match app.backend {
        common::Backend::Sqlite => base,
        common::Backend::Postgres => base + 1,
    }
}

async fn wait_scan(app: &common::TestApp, range: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (s, r) = app
            .get(&format!("/api/node_discovery/scan_range/{range}/"))
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        if r["status"] != "scanning" {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "scan of range {range} did not end: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_range(app: &common::TestApp, from: &str, to: &str, port: u16) -> i64 {
    let (s, r) = app
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": "Rack", "ip_from": from, "ip_to": to, "ports": [port]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["status"], "ready");
    assert_eq!(r["last_scan_at"], Value::Null);
    r["id"].as_i64().unwrap()
}

async fn scan(app: &common::TestApp, range: i64) -> Value {
    let (s, r) = app
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [range]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["scan_ranges"][0]["status"], "scanning", "{r}");
    assert!(r["job"].as_i64().is_some());
    wait_scan(app, range).await
}

async fn nodes_of(app: &common::TestApp, range: i64) -> Vec<Value> {
    let (s, r) = app
        .get(&format!(
            "/api/node/?scan_range={range}&ordering=ip_address"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["results"].as_array().unwrap().clone()
}

async fn profile(app: &common::TestApp, name: &str, creds: &[(&str, &str)]) -> i64 {
    let (s, p) = app
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": name, "bmc": "redfish"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["id"].as_i64().unwrap();
    for (u, pw) in creds {
        let (s, c) = app
            .post(
                &format!("/api/node_discovery/auth_profile/{id}/credentials/"),
                json!({"username": u, "password": pw}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c.as_object().unwrap().len(), 2, "only id and username: {c}");
    }
    id
}

both!(
    scan_mixed_lab_register_and_rescan,
    |app: common::TestApp| async move {
        let b = block(&app, 70);
        let lab = Lab::start(
            "start-mixed",
            10,
            &["--base", &format!("127.0.{b}.1"), "--port", "9443"],
        );
        // After the lab: a garbage speaker, a TLS-shaped speaker the client refuses, and one
        // empty address.
        let garbage = tokio::net::TcpListener::bind(format!("127.0.{b}.11:9443"))
            .await
            .unwrap();
        let garbage_task = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut sock, _)) = garbage.accept().await {
                let _ = sock.write_all(b"SSH-2.0-garbage\r\n\x00\x01\x02").await;
            }
        });
        let bad_tls = tokio::net::TcpListener::bind(format!("127.0.{b}.12:9443"))
            .await
            .unwrap();
        let bad_tls_task = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut sock, _)) = bad_tls.accept().await {
                let _ = sock.write_all(b"\x16\x03\x01\xff\xffnot a handshake").await;
            }
        });
        let range = create_range(
            &app,
            &format!("127.0.{b}.1"),
            &format!("127.0.{b}.13"),
            9443,
        )
        .await;
        let done = scan(&app, range).await;
        assert_eq!(done["status"], "ready", "{done}");
        assert_eq!(
            done["progress"],
            json!({"scanned": 13, "total": 13, "found": 7}),
            "{done}"
        );
        assert!(done["last_scan_at"].is_string());
        garbage_task.abort();
        bad_tls_task.abort();

        let nodes = nodes_of(&app, range).await;
        let expect: Vec<String> = lab
            .slots
            .iter()
            .filter(|s| s.kind.starts_with("redfish"))
            .map(|s| s.ip.clone())
            .collect();
        let mut got: Vec<String> = nodes
            .iter()
            .map(|n| n["ip_address"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        let tls_ip = format!("127.0.{b}.12");
        let mut want = expect.clone();
        want.push(tls_ip.clone());
        want.sort();
        assert_eq!(got, want, "{nodes:?}");
        for n in &nodes {
            assert_eq!(n["scan_range"], range);
            if n["ip_address"] == tls_ip.as_str() {
                assert_eq!(n["status"], "error", "{n}");
                assert!(
                    n["last_error"].as_str().unwrap().starts_with("TLS: "),
                    "{n}"
                );
            } else {
                assert_eq!(n["status"], "discovered", "{n}");
            }
        }
        let http = lab.slots.iter().find(|s| s.scheme == "http").unwrap();
        let http_node = nodes
            .iter()
            .find(|n| n["ip_address"] == http.ip.as_str())
            .unwrap();
        assert!(
            http_node["url"].as_str().unwrap().starts_with("http://"),
            "{http_node}"
        );

        // Job shows up in /api/job/ and succeeded.
        let (s, jobs) = app.get("/api/job/?kind=scan").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(jobs["results"][0]["status"], "succeeded", "{jobs}");
        assert_eq!(jobs["results"][0]["targets"], json!([range]));

        // Rescan: same nodes, same ids.
        let again = scan(&app, range).await;
        assert_eq!(again["status"], "ready");
        let nodes2 = nodes_of(&app, range).await;
        let ids = |v: &[Value]| {
            v.iter()
                .map(|n| n["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&nodes), ids(&nodes2));
        let (_, all) = app.get("/api/node/").await;
        assert_eq!(all["count"], 8);

        // Wrong credential first, then the right one, in one profile.
        let slot0 = lab.slots.iter().find(|s| s.idx == 0).unwrap();
        let good = profile(
            &app,
            "Rack creds",
            &[("root", "wrong-password"), (&slot0.user, &slot0.password)],
        )
        .await;
        let node0 = nodes
            .iter()
            .find(|n| n["ip_address"] == slot0.ip.as_str())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let (s, n) = app
            .post(
                &format!("/api/node/{node0}/register/"),
                json!({"auth_profile": good}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{n}");
        assert_eq!(n["status"], "registered");
        assert_eq!(n["auth_profile"], good);
        let server = n["server"].as_i64().expect("registration created a server");
        let (s, srv) = app.get(&format!("/api/server/{server}/")).await;
        assert_eq!(s, StatusCode::OK, "{srv}");
        assert_eq!(srv["node"], node0);
        assert!(srv["serial_number"].is_string(), "{srv}");
        let (s, _) = app.get(&format!("/api/server/{server}/processors/")).await;
        assert_eq!(s, StatusCode::OK);
        // A node with a server cannot be deleted; the answer names the server.
        let (s, e) = app.delete(&format!("/api/node/{node0}/")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("server {server}")),
            "{e}"
        );
        let st = lab.state_of(slot0).await.unwrap();
        assert_eq!(st["failed_logins"], 1, "one attempt per credential: {st}");
        // Later operations log in with the remembered credential first.
        let stored = mojo_server::db::nodes::get(&app.state.db, node0)
            .await
            .unwrap()
            .unwrap();
        let (client, creds) =
            mojo_server::discovery::register::node_access(&app.state, &stored, None, None)
                .await
                .unwrap();
        assert_eq!(creds[0].1, slot0.password);
        let session = client.login(&creds).await.unwrap();
        assert_eq!(session.credential_index(), 0);
        session.logout().await.unwrap();
        let st = lab.state_of(slot0).await.unwrap();
        assert_eq!(st["failed_logins"], 1, "no new failure: {st}");

        // A BMC that accepts none of the profile's credentials (alt-credential slot).
        let slot2 = lab.slots.iter().find(|s| s.idx == 2).unwrap();
        let node2 = nodes
            .iter()
            .find(|n| n["ip_address"] == slot2.ip.as_str())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let only_default = profile(&app, "Defaults", &[("root", "calvin")]).await;
        let (s, e) = app
            .post(
                &format!("/api/node/{node2}/register/"),
                json!({"auth_profile": only_default}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("BMC https://{}:{}: ", slot2.ip, slot2.port)),
            "{detail}"
        );
        let (_, n2) = app.get(&format!("/api/node/{node2}/")).await;
        assert_eq!(n2["status"], "discovered");
        assert!(
            n2["last_error"].as_str().unwrap().contains("credentials"),
            "{n2}"
        );

        // Plain-HTTP BMCs are refused unless allowed.
        let (s, e) = app
            .post(
                &format!("/api/node/{}/register/", http_node["id"]),
                json!({"auth_profile": only_default}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains("MOJO_ALLOW_HTTP_BMC"),
            "{e}"
        );

        // Validation of the register body.
        let (s, e) = app
            .post(
                &format!("/api/node/{node2}/register/"),
                json!({"auth_profile": 999}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            e,
            json!({"auth_profile": ["Invalid pk \"999\" - object does not exist."]})
        );
        let (s, e) = app
            .post("/api/node/999999/register/", json!({"auth_profile": good}))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
        assert_eq!(e["detail"], "No Node matches the given query.");

        // A registered node is not downgraded by a rescan.
        scan(&app, range).await;
        let (_, n0) = app.get(&format!("/api/node/{node0}/")).await;
        assert_eq!(n0["status"], "registered");
        let (s, d) = app.get("/api/node/?status=registered").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(d["count"], 1);

        // Profile in use cannot be deleted.
        let (s, e) = app
            .delete(&format!("/api/node_discovery/auth_profile/{good}/"))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(e.to_string().contains("is used by nodes"), "{e}");

        // No session left open anywhere.
        assert_eq!(lab.open_sessions().await, 0);

        // Deleting the range keeps its nodes.
        let (s, _) = app
            .delete(&format!("/api/node_discovery/scan_range/{range}/"))
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, n0) = app.get(&format!("/api/node/{node0}/")).await;
        assert_eq!(n0["scan_range"], Value::Null);

        // Deleting the server sets its node back to discovered.
        let (s, _) = app.delete(&format!("/api/server/{server}/")).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, n0) = app.get(&format!("/api/node/{node0}/")).await;
        assert_eq!(n0["status"], "discovered", "{n0}");
        assert_eq!(n0["server"], Value::Null);

        // Stopping the lab makes the nodes unreachable on the next scan of a new range.
        drop(lab);
        let range2 = create_range(
            &app,
            &format!("127.0.{b}.1"),
            &format!("127.0.{b}.10"),
            9443,
        )
        .await;
        scan(&app, range2).await;
        let (_, n2) = app.get(&format!("/api/node/{node2}/")).await;
        assert_eq!(
            n2["status"], "discovered",
            "nodes of another range are left alone: {n2}"
        );
        app
    }
);

both!(scan_range_validation, |app: common::TestApp| async move {
    let path = "/api/node_discovery/scan_range/";
    let (s, e) = app
        .post(
            path,
            json!({"name": "x", "ip_from": "10.0.0.1", "ip_to": "10.0.0.5"}), // outside: rejected
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "outside allowed networks: {e}");
    assert!(e["non_field_errors"][0]
        .as_str()
        .unwrap()
        .contains("MOJO_DISCOVERY_ALLOWED_NETWORKS"));
    let (_, list) = app.get(path).await;
    assert_eq!(list["count"], 0, "nothing stored");

    let (s, e) = app
        .post(
            path,
            json!({"name": "x", "ip_from": "127.0.0.9", "ip_to": "127.0.0.1"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["ip_to"].is_array(), "{e}");
    let (s, e) = app
        .post(
            path,
            json!({"name": "x", "ip_from": "127.0.0.1", "ip_to": "::1"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["ip_to"].is_array(), "{e}");
    let (s, e) = app
        .post(
            path,
            json!({"name": "x", "ip_from": "nope", "ip_to": "127.0.0.1", "ports": [0, 70000]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["ip_from"], json!(["Enter a valid IPv4 or IPv6 address."]));
    assert!(e["ports"].is_object(), "{e}");
    let (s, e) = app
        .post(
            path,
            json!({"name": "x", "ip_from": "127.0.0.1", "ip_to": "127.0.0.2", "ports": [443, 443]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["ports"].is_array(), "{e}");
    let many: Vec<u16> = (1..=17).collect();
    let (s, _) = app
        .post(
            path,
            json!({"name": "x", "ip_from": "127.0.0.1", "ip_to": "127.0.0.2", "ports": many}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, e) = app
        .post(
            path,
            json!({"name": "x", "ip_from": "127.0.0.0", "ip_to": "127.1.0.0", "ports": [443]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "too many probes: {e}");
    assert!(e["non_field_errors"][0]
        .as_str()
        .unwrap()
        .contains("MOJO_SCAN_MAX_PROBES"));
    let (s, e) = app.post(path, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["name"], json!(["This field is required."]));

    let (s, r) = app
        .post(
            path,
            json!({"name": "ok", "ip_from": "127.0.0.1", "ip_to": "127.0.0.2"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["ports"], json!([443]));
    assert_eq!(r["progress"], json!({"scanned": 0, "total": 0, "found": 0}));
    let id = r["id"].as_i64().unwrap();
    let (s, e) = app
        .patch(&format!("{path}{id}/"), json!({"ip_to": "10.0.0.1"})) // outside: rejected
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, r) = app
        .patch(&format!("{path}{id}/"), json!({"name": "renamed"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["name"], "renamed");
    let (s, e) = app
        .post("/api/node_discovery/run_scan/", json!({"scan_ranges": []}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"scan_ranges": ["This list may not be empty."]}));
    let (s, e) = app
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [id, 4242]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        e,
        json!({"scan_ranges": ["Invalid pk \"4242\" - object does not exist."]})
    );
    let (s, e) = app.get(&format!("{path}9999/")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["detail"], "No ScanRange matches the given query.");

    // Non-superusers are refused.
    let (_, token) = app.user("viewer", &[1]).await;
    let (s, _) = app
        .call(reqwest::Method::GET, path, None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Jobs are visible to their starter: this user started none.
    let (s, jobs) = app
        .call(reqwest::Method::GET, "/api/job/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(jobs["count"], 0, "{jobs}");
    app
});

both!(credentials_are_sealed, |app: common::TestApp| async move {
    let secret = "Sup3r-Secret-BMC-Passw0rd";
    let id = profile(&app, "Sealed", &[("root", secret), ("admin", "other")]).await;
    let (s, p) = app
        .get(&format!("/api/node_discovery/auth_profile/{id}/"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        p,
        json!({"id": id, "node_classification": "Sealed", "bmc": "redfish", "credentials_count": 2})
    );
    let (s, list) = app
        .get(&format!(
            "/api/node_discovery/auth_profile/{id}/credentials/"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(secret));
    let (s, e) = app
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "Sealed", "bmc": "redfish"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["node_classification"].is_array());
    let (s, e) = app
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "X", "bmc": "ipmi"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e) = app
        .post(
            &format!("/api/node_discovery/auth_profile/{id}/credentials/"),
            json!({"username": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"password": ["This field is required."]}));

    // The stored bytes are not the password.
    let stored = app
        .state
        .db
        .fetch_all(&mojo_server::db::Sql::new(
            "SELECT secret FROM credentials ORDER BY id",
        ))
        .await
        .unwrap();
    let blob = stored[0].opt_bytes("secret").unwrap().unwrap();
    assert!(blob.len() >= 12 + secret.len() + 16);
    assert!(!blob.windows(secret.len()).any(|w| w == secret.as_bytes()));
    if app.backend == common::Backend::Sqlite {
        for f in ["mojo.db", "mojo.db-wal"] {
            if let Ok(bytes) = std::fs::read(app.data_dir.path().join(f)) {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{f} holds the password"
                );
            }
        }
    }
    let cid = list[0]["id"].as_i64().unwrap();
    let (s, _) = app
        .delete(&format!(
            "/api/node_discovery/auth_profile/{id}/credentials/{cid}/"
        ))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .delete(&format!(
            "/api/node_discovery/auth_profile/{id}/credentials/{cid}/"
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .delete(&format!("/api/node_discovery/auth_profile/{id}/"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app
});

both!(
    second_register_while_registering_is_refused,
    |app: common::TestApp| async move {
        let b = block(&app, 72);
        let lab = Lab::start(
            "start",
            1,
            &[
                "--base",
                &format!("127.0.{b}.1"),
                "--port",
                "9443",
                "--persona",
                "dell",
                "--delay-ms",
                "300",
            ],
        );
        let ip = format!("127.0.{b}.1");
        let range = create_range(&app, &ip, &ip, 9443).await;
        let done = scan(&app, range).await;
        assert_eq!(done["progress"]["found"], 1, "{done}");
        let node = nodes_of(&app, range).await[0]["id"].as_i64().unwrap();
        let prof = profile(&app, "Slow", &[("root", "calvin")]).await;

        let first = {
            let req = app
                .req(
                    reqwest::Method::POST,
                    &format!("/api/node/{node}/register/"),
                )
                .json(&json!({"auth_profile": prof}));
            tokio::spawn(async move { req.send().await.unwrap().status() })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, n) = app.get(&format!("/api/node/{node}/")).await;
            if n["status"] == "registering" {
                break;
            }
            assert!(Instant::now() < deadline, "never registering: {n}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (s, e) = app
            .post(
                &format!("/api/node/{node}/register/"),
                json!({"auth_profile": prof}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(
            e,
            json!({"detail": format!("Node {node} is being registered.")})
        );
        let (s, _) = app.delete(&format!("/api/node/{node}/")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "no delete while registering");
        assert_eq!(first.await.unwrap(), StatusCode::OK);
        let (_, n) = app.get(&format!("/api/node/{node}/")).await;
        assert_eq!(n["status"], "registered", "{n}");
        assert_eq!(lab.open_sessions().await, 0);
        let (s, m) = app.call(reqwest::Method::GET, "/metrics", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            m.as_str()
                .unwrap()
                .contains("mojo_jobs{kind=\"scan\",status=\"succeeded\"} 1"),
            "{m}"
        );
        app
    }
);

both!(
    deleting_a_scanning_range_cancels_its_scan,
    |app: common::TestApp| async move {
        let b = block(&app, 76);
        let lab = Lab::start(
            "start",
            3,
            &[
                "--base",
                &format!("127.0.{b}.1"),
                "--port",
                "9443",
                "--persona",
                "dell",
                "--delay-ms",
                "1000",
            ],
        );
        // A first scan completes: its nodes must survive the deletion of the range.
        let range =
            create_range(&app, &format!("127.0.{b}.1"), &format!("127.0.{b}.3"), 9443).await;
        let done = scan(&app, range).await;
        assert_eq!(done["progress"]["found"], 3, "{done}");
        let (s, r) = app
            .post(
                "/api/node_discovery/run_scan/",
                json!({"scan_ranges": [range]}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let job = r["job"].as_i64().unwrap();
        // A range already scanning keeps its scan.
        let (s, again) = app
            .post(
                "/api/node_discovery/run_scan/",
                json!({"scan_ranges": [range]}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert_eq!(again["job"], job, "{again}");

        let (s, _) = app
            .delete(&format!("/api/node_discovery/scan_range/{range}/"))
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, j) = app.get(&format!("/api/job/{job}/")).await;
        assert_eq!(j["status"], "cancelled", "{j}");
        let (s, e) = app
            .post(&format!("/api/job/{job}/cancel/"), json!({}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let (_, nodes) = app.get("/api/node/").await;
        assert_eq!(nodes["count"], 3);
        for n in nodes["results"].as_array().unwrap() {
            assert_eq!(n["scan_range"], Value::Null, "{n}");
        }
        // Discovery never logs in: nothing is open on the BMCs.
        assert_eq!(lab.open_sessions().await, 0);
        let (s, _) = app.post("/api/job/999999/cancel/", json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Cancelling a running scan through /api/job/ sets its range back to ready.
        let range2 =
            create_range(&app, &format!("127.0.{b}.1"), &format!("127.0.{b}.3"), 9443).await;
        let (_, r) = app
            .post(
                "/api/node_discovery/run_scan/",
                json!({"scan_ranges": [range2]}),
            )
            .await;
        let job2 = r["job"].as_i64().unwrap();
        let (s, j) = app
            .post(&format!("/api/job/{job2}/cancel/"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{j}");
        assert_eq!(j["status"], "cancelled");
        let (_, r2) = app
            .get(&format!("/api/node_discovery/scan_range/{range2}/"))
            .await;
        assert_eq!(r2["status"], "ready", "{r2}");
        app
    }
);

async fn register_deadline(backend: common::Backend, b: u8) {
    let app = common::spawn_with(
        backend,
        common::Opts {
            args: vec!["--register-timeout".into(), "2s".into()],
            ..Default::default()
        },
    )
    .await;
    let lab = Lab::start(
        "start",
        1,
        &[
            "--base",
            &format!("127.0.{b}.1"),
            "--port",
            "9443",
            "--persona",
            "dell",
            "--delay-ms",
            "700",
        ],
    );
    let ip = format!("127.0.{b}.1");
    let range = create_range(&app, &ip, &ip, 9443).await;
    scan(&app, range).await;
    let node = nodes_of(&app, range).await[0]["id"].as_i64().unwrap();
    let prof = profile(&app, "Deadline", &[("root", "calvin")]).await;
    let started = Instant::now();
    let (s, e) = app
        .post(
            &format!("/api/node/{node}/register/"),
            json!({"auth_profile": prof}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("BMC https://{ip}:9443: ")),
        "{detail}"
    );
    assert!(
        detail.contains("MOJO_REGISTER_TIMEOUT") || detail.contains("timed out"),
        "{detail}"
    );
    let (_, n) = app.get(&format!("/api/node/{node}/")).await;
    assert_eq!(n["status"], "discovered", "{n}");
    assert!(n["last_error"].is_string(), "{n}");
    // The session opened before the deadline is deleted all the same.
    let deadline = Instant::now() + Duration::from_secs(15);
    while lab.open_sessions().await != 0 {
        assert!(Instant::now() < deadline, "a BMC session was left open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_deadline_sqlite() {
    register_deadline(common::Backend::Sqlite, 78).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_deadline_postgres() {
    register_deadline(common::Backend::Postgres, 79).await;
}

both!(odd_inputs_never_500, |app: common::TestApp| async move {
    let cases: Vec<(reqwest::Method, &str, Option<Value>)> = vec![
        (reqwest::Method::GET, "/api/node/?scan_range=abc", None),
        (reqwest::Method::GET, "/api/node/?status=nope", None),
        (
            reqwest::Method::GET,
            "/api/node/?scan_range=null&vendor=x&search=%25_%5C",
            None,
        ),
        (reqwest::Method::GET, "/api/node/?page=9&page_size=2", None),
        (
            reqwest::Method::GET,
            "/api/job/?status=nope&ordering=-created_at",
            None,
        ),
        (
            reqwest::Method::GET,
            "/api/node_discovery/scan_range/?status=scanning&search=a",
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/node_discovery/run_scan/",
            Some(json!({"scan_ranges": "x"})),
        ),
        (
            reqwest::Method::POST,
            "/api/node_discovery/run_scan/",
            Some(json!([1, 2])),
        ),
        (
            reqwest::Method::POST,
            "/api/node_discovery/run_scan/",
            Some(json!({"scan_ranges": [1e30]})),
        ),
        (
            reqwest::Method::POST,
            "/api/node/1/register/",
            Some(json!({"auth_profile": [1]})),
        ),
        (
            reqwest::Method::POST,
            "/api/node/abc/register/",
            Some(json!({"auth_profile": 1})),
        ),
        (reqwest::Method::POST, "/api/job/abc/cancel/", None),
        (
            reqwest::Method::DELETE,
            "/api/node/99999999999999999999/",
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/node_discovery/scan_range/",
            Some(
                json!({"name": "v6", "ip_from": "::", "ip_to": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}),
            ),
        ),
        (
            reqwest::Method::POST,
            "/api/node_discovery/scan_range/",
            Some(json!({"name": "v6", "ip_from": "fe80::1", "ip_to": "fe80::ffff"})),
        ),
        (
            reqwest::Method::POST,
            "/api/node_discovery/scan_range/",
            Some(
                json!({"name": "x", "ip_from": "127.0.0.1", "ip_to": "127.0.0.2", "ports": {"a": 1}}),
            ),
        ),
        (
            reqwest::Method::POST,
            "/api/node_discovery/auth_profile/1/credentials/",
            Some(json!({"username": "u", "password": "p\u{0}"})),
        ),
        (
            reqwest::Method::PATCH,
            "/api/node_discovery/auth_profile/1/",
            Some(json!({"node_classification": null, "bmc": 5})),
        ),
    ];
    for (method, path, body) in cases {
        let (s, b) = app
            .call(method.clone(), path, body, Some(&app.token.clone()))
            .await;
        assert!(!s.is_server_error(), "{method} {path}: {s} {b}");
    }
    // Form bodies work like JSON ones (`ports=443`).
    let resp = app
        .req(reqwest::Method::POST, "/api/node_discovery/scan_range/")
        .form(&[
            ("name", "form"),
            ("ip_from", "127.0.0.1"),
            ("ip_to", "127.0.0.4"),
            ("ports", "443"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["ports"], json!([443]));
    app
});
