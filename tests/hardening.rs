//! Hardening through the API (issue 9): tokens after a password change, list and body caps,
//! the list engine under random parameters, metrics labels, JSON lists, the audit log and the
//! smaller edge rules (OPTIONS, security headers, file modes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn tokens(app: &common::TestApp, username: &str, password: &str) -> (String, String) {
    let (s, b) = app
        .call(
            Method::POST,
            "/api/token/",
            Some(json!({"username": username, "password": password})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    (
        b["access"].as_str().unwrap().to_string(),
        b["refresh"].as_str().unwrap().to_string(),
    )
}

both!(
    password_change_revokes_tokens,
    |app: common::TestApp| async move {
        let (id, _) = app.user("carol", &[1]).await;
        let (access, refresh) = tokens(&app, "carol", "pw-of-a-user").await;
        let (s, _) = app
            .call(Method::GET, "/api/users/me/", None, Some(&access))
            .await;
        assert_eq!(s, StatusCode::OK);
        // Another field changes nothing.
        let (s, _) = app
            .patch(&format!("/api/users/{id}/"), json!({"first_name": "C"}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app
            .call(Method::GET, "/api/users/me/", None, Some(&access))
            .await;
        assert_eq!(s, StatusCode::OK);
        // A password change refuses every token issued before it, access and refresh.
        let (s, _) = app
            .patch(
                &format!("/api/users/{id}/"),
                json!({"password": "a-new-password"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, b) = app
            .call(Method::GET, "/api/users/me/", None, Some(&access))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        assert_eq!(b["code"], "token_not_valid");
        let (s, _) = app
            .call(
                Method::POST,
                "/api/token/refresh/",
                Some(json!({"refresh": refresh})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = app
            .call(
                Method::POST,
                "/api/token/verify/",
                Some(json!({"token": access})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // A login right after the change works at once, in the same second.
        let (fresh, fresh_refresh) = tokens(&app, "carol", "a-new-password").await;
        let (s, _) = app
            .call(Method::GET, "/api/users/me/", None, Some(&fresh))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app
            .call(
                Method::POST,
                "/api/token/refresh/",
                Some(json!({"refresh": fresh_refresh})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        // Deactivating and reactivating does not revive old tokens.
        let (s, _) = app
            .patch(&format!("/api/users/{id}/"), json!({"is_active": false}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app
            .patch(&format!("/api/users/{id}/"), json!({"is_active": true}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app
            .call(Method::GET, "/api/users/me/", None, Some(&fresh))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        app
    }
);

/// A change made on another replica reaches this one's identity cache within its TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_on_another_replica() {
    use clap::Parser;
    let app = common::spawn(common::Backend::Postgres).await;
    let (id, _) = app.user("dave", &[1]).await;
    let (access, _) = tokens(&app, "dave", "pw-of-a-user").await;
    let (s, _) = app
        .call(Method::GET, "/api/users/me/", None, Some(&access))
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut config = mojo_server::config::Cli::parse_from([
        "mojo-server",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--data-dir",
        &app.data_dir.path().join("replica").display().to_string(),
        "--database-url",
        &app.state.config.database_url(),
    ])
    .config;
    config.injected.secret_key = Some("test-jwt-secret-0123456789abcdef".into());
    config.injected.credential_key =
        Some("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into());
    let replica = mojo_server::app::App::build(config).await.unwrap();
    let base = format!("http://{}", replica.local_addr().unwrap());
    let replica_state = replica.state.clone();
    let task = tokio::spawn(replica.run());
    let resp = app
        .client
        .patch(format!("{base}/api/users/{id}/"))
        .bearer_auth(&app.token)
        .json(&json!({"password": "changed-elsewhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(
        mojo_server::http::auth::IDENTITY_TTL + std::time::Duration::from_millis(500),
    )
    .await;
    let (s, _) = app
        .call(Method::GET, "/api/users/me/", None, Some(&access))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    replica_state.shutdown.cancel();
    let _ = task.await;
    app.finish().await;
}

both!(list_and_body_caps, |app: common::TestApp| async move {
    // A NUL in a query value (found by schemathesis: a 500 on PostgreSQL) is Django's 400.
    let (s, b) = app.get("/api/node/?status=a%00b&vendor=x").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b, json!({"status": ["Null characters are not allowed."]}));
    let terms: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    let (s, b) = app
        .get(&format!("/api/users/?search={}", terms.join("+")))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        b,
        json!({"search": ["Ensure this field has no more than 20 terms."]})
    );
    let ordering = vec!["username"; 2100].join(",");
    let (s, b) = app.get(&format!("/api/users/?ordering={ordering}")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ordering = ["-name", "name", "id"].repeat(800).join(",");
    let (s, _) = app.get(&format!("/api/pool/?ordering={ordering}")).await;
    assert_eq!(s, StatusCode::OK);
    let users: Vec<i64> = (1..=50_000).collect();
    let (s, b) = app
        .post("/api/groups/", json!({"name": "many", "users": users}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        b,
        json!({"users": ["Ensure this field has no more than 10000 elements."]})
    );
    let (s, b) = app
        .post(
            "/api/users/",
            json!({"username": "u", "password": "p", "groups": users}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    app
});

/// Random combinations of every list's parameters never reach a 5xx.
fn random_value(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "",
        "1",
        "0",
        "-1",
        "null",
        "true",
        "false",
        "abc",
        "%",
        "_",
        "\\",
        "'",
        "\"",
        "a b",
        "\"quoted phrase\"",
        "é",
        "ß",
        "🙂",
        "9223372036854775807",
        "9223372036854775808",
        "1e9",
        "1.5",
        ",",
        ",,",
        "last",
        "NULL",
        "%00",
        "\u{7f}",
        "x,y,z",
        "'unclosed",
    ];
    let n = rng.gen_range(1..4);
    (0..n)
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect::<Vec<_>>()
        .join(if rng.gen_bool(0.5) { " " } else { "" })
}

both!(list_engine_property, |app: common::TestApp| async move {
    let api = mojo_server::http::api();
    let mut lists = Vec::new();
    for op in &api.ops {
        if let mojo_server::http::routes::Reply::List(_, spec) = op.reply {
            lists.push((op.path.replace("{id}", "1"), spec));
        }
    }
    assert!(lists.len() >= 5);
    // Something to list.
    let (s, _) = app
        .post("/api/pool/", json!({"name": "p", "group": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..240 {
        let (path, spec) = &lists[round % lists.len()];
        let mut params: Vec<(String, String)> = Vec::new();
        if rng.gen_bool(0.6) {
            let n = if rng.gen_bool(0.1) {
                rng.gen_range(200..1200)
            } else {
                rng.gen_range(1..30)
            };
            let terms: Vec<String> = (0..n).map(|_| random_value(&mut rng)).collect();
            params.push(("search".into(), terms.join(" ")));
        }
        if rng.gen_bool(0.6) {
            let n = rng.gen_range(1..12);
            let mut names: Vec<String> = (0..n)
                .map(|_| {
                    let name = if spec.ordering.is_empty() || rng.gen_bool(0.2) {
                        random_value(&mut rng)
                    } else {
                        spec.ordering[rng.gen_range(0..spec.ordering.len())]
                            .0
                            .to_string()
                    };
                    if rng.gen_bool(0.5) {
                        format!("-{name}")
                    } else {
                        name
                    }
                })
                .collect();
            if rng.gen_bool(0.2) {
                let once = names.clone();
                for _ in 0..250 {
                    names.extend(once.iter().cloned());
                }
            }
            params.push(("ordering".into(), names.join(",")));
        }
        for f in spec.filters {
            if rng.gen_bool(0.4) {
                params.push((f.param.to_string(), random_value(&mut rng)));
            }
        }
        for p in ["page", "page_size"] {
            if rng.gen_bool(0.4) {
                params.push((p.to_string(), random_value(&mut rng)));
            }
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let url = format!("{path}?{query}");
        let (s, b) = app.get(&url).await;
        assert!(s.as_u16() < 500, "{url}: {s} {b}");
    }
    app
});

both!(
    metrics_labels_are_bounded,
    |app: common::TestApp| async move {
        let method = Method::from_bytes(b"ZZMETHOD1").unwrap();
        let resp = app
            .client
            .request(method, format!("{}/api/pool/", app.base))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error());
        let text = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains("ZZMETHOD1"), "{text}");
        assert!(text.contains("method=\"other\""), "{text}");
        app
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = common::spawn_with(
        common::Backend::Sqlite,
        common::Opts {
            args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
            ..Default::default()
        },
    )
    .await;
    let (s, _) = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let resp = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("mojo_http_requests_total"));
    app.finish().await;
}

both!(
    json_strings_are_not_lists,
    |app: common::TestApp| async move {
        let (s, b) = app
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": "r", "ip_from": "127.73.0.1", "ip_to": "127.73.0.2", "ports": "443"}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(
            b,
            json!({"ports": ["Expected a list of items but got type \"str\"."]})
        );
        // A form body keeps the single-value coercion.
        let resp = app
            .req(Method::POST, "/api/node_discovery/scan_range/")
            .form(&[
                ("name", "r"),
                ("ip_from", "127.73.0.1"),
                ("ip_to", "127.73.0.2"),
                ("ports", "443"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["ports"], json!([443]));
        app
    }
);

both!(
    audit_log_records_writes,
    |app: common::TestApp| async move {
        let (uid, _) = app.user("erin", &[1]).await;
        let (s, g) = app
            .post("/api/groups/", json!({"name": "ops", "users": [uid]}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let gid = g["id"].as_i64().unwrap();
        let (s, _) = app
            .patch(
                &format!("/api/users/{uid}/"),
                json!({"password": "hunter2-secret"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        // A refused write is not recorded.
        let (s, _) = app.post("/api/groups/", json!({"name": "ops"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = app.delete(&format!("/api/groups/{gid}/")).await;
        assert_eq!(s, StatusCode::NO_CONTENT);

        let (s, b) = app.get("/api/audit_log/").await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let rows = b["results"].as_array().unwrap();
        let summary: Vec<(String, String, Option<String>)> = rows
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap().to_string(),
                    r["object_kind"].as_str().unwrap().to_string(),
                    r["object_id"].as_str().map(str::to_string),
                )
            })
            .collect();
        let (gid_s, uid_s) = (gid.to_string(), uid.to_string());
        assert_eq!(
            summary,
            vec![
                ("DELETE".into(), "groups".into(), Some(gid_s.clone())),
                ("PATCH".into(), "users".into(), Some(uid_s.clone())),
                ("POST".into(), "groups".into(), Some(gid_s.clone())),
                ("POST".into(), "users".into(), Some(uid_s.clone())),
            ]
        );
        let admin_id = rows[0]["user"].as_i64().unwrap();
        assert!(rows.iter().all(|r| r["user"] == json!(admin_id)
            && r["username"] == "admin"
            && r["source"] == "127.0.0.1"
            && r["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))));
        assert_eq!(rows[1]["summary"], format!("updated users {uid}"));
        assert_eq!(rows[1]["path"], format!("/api/users/{uid}/"));
        let text = b.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("pw-of-a-user"),
            "{text}"
        );
        // Filters and ordering.
        let (_, b) = app.get("/api/audit_log/?object_kind=groups").await;
        assert_eq!(b["count"], 2);
        let (_, b) = app
            .get(&format!(
                "/api/audit_log/?object_kind=users&object_id={uid}&ordering=created_at"
            ))
            .await;
        assert_eq!(b["count"], 2);
        assert_eq!(b["results"][0]["method"], "POST");
        let (_, b) = app.get(&format!("/api/audit_log/?user={admin_id}")).await;
        assert_eq!(b["count"], 4);
        let (_, b) = app.get("/api/audit_log/?user=99999").await;
        assert_eq!(b["count"], 0);
        // Superusers only (the user's old token died with the password change).
        let user_token = app.login("erin", "hunter2-secret").await;
        let (s, _) = app
            .call(Method::GET, "/api/audit_log/", None, Some(&user_token))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        app
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_is_pruned() {
    for backend in [common::Backend::Sqlite, common::Backend::Postgres] {
        let mut app = common::spawn_with(
            backend,
            common::Opts {
                args: vec!["--audit-retention".into(), "1s".into()],
                ..Default::default()
            },
        )
        .await;
        let (s, _) = app.post("/api/groups/", json!({"name": "old"})).await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, b) = app.get("/api/audit_log/").await;
        assert_eq!(b["count"], 1);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        app.restart().await;
        let mut count = json!(1);
        for _ in 0..50 {
            let (_, b) = app.get("/api/audit_log/").await;
            count = b["count"].clone();
            if count == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(count, 0);
        app.finish().await;
    }
}

/// Components carry drf-spectacular's names (after the serializer), and foreign-key filters
/// are integers, so clients generated from the product's schema fit this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_names_follow_drf_spectacular() {
    let app = common::spawn(common::Backend::Sqlite).await;
    let resp = app
        .req(Method::GET, "/api/schema/?format=json")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for name in [
        "Pool",
        "Node",
        "Server",
        "Switch",
        "Job",
        "ScanRange",
        "PaginatedPoolList",
        "PaginatedServerList",
        "PatchedPoolRequest",
        "PoolRequest",
        "AuditLog",
    ] {
        assert!(
            text.contains(&format!("#/components/schemas/{name}")),
            "{name} missing"
        );
    }
    for old in ["PoolOut", "NodeOut", "ServerOut", "PaginatedPoolOutList"] {
        assert!(!text.contains(old), "{old} still in the schema");
    }
    let doc: Value = serde_json::from_str(&text)
        .or_else(|_| serde_norway::from_str(&text))
        .unwrap();
    let params = doc["paths"]["/api/server/"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let pool = params
        .iter()
        .find(|p| p["name"] == "resource_pool")
        .expect("resource_pool filter");
    assert_eq!(pool["schema"]["type"], "integer");
    assert!(pool["description"].as_str().unwrap().contains("null"));
    app.finish().await;
}
