//! Login under attack: bounded password hashing (429 past the queue), the throttle counted
//! before the password check, X-Forwarded-For read from the right, the per-username window,
//! and the throttle shared by replicas on one PostgreSQL.
//!
//! Its own test binary: the hashing bound is per process, so floods here must not meet other
//! tests' logins; the tests of this file run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use clap::Parser;
use reqwest::StatusCode;
use serde_json::json;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn attempt(
    app: &common::TestApp,
    username: &str,
    password: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/api/token/", app.base))
        .json(&json!({"username": username, "password": password}));
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

async fn statuses(app: &common::TestApp, n: usize, username: &str) -> Vec<StatusCode> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (client, base) = (app.client.clone(), app.base.clone());
        let name = if username.is_empty() {
            format!("nobody-{i}")
        } else {
            username.to_string()
        };
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}/api/token/"))
                .json(&json!({"username": name, "password": "wrong"}))
                .send()
                .await
                .unwrap()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        let resp = t.await.unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
        }
        out.push(resp.status());
    }
    out
}

/// 40 parallel logins with unknown names: hashing is bounded, so some are refused with 429
/// and `Retry-After` instead of each taking an argon2 work area.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_unknown_logins_are_bounded() {
    let _serial = SERIAL.lock().await;
    let app = common::spawn_with(
        common::Backend::Sqlite,
        common::Opts {
            args: vec![
                "--login-throttle".into(),
                "off".into(),
                "--login-throttle-user".into(),
                "off".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    let got = statuses(&app, 40, "").await;
    let refused = got
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let unauthorized = got
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(refused > 0, "no 429 among {got:?}");
    assert_eq!(refused + unauthorized, 40, "{got:?}");
    // Unknown names still cost a hash: they answer 401, not at once.
    assert!(unauthorized > 0);
    // Once the flood is over, logins work.
    let (s, _) = app.get("/api/users/me/").await;
    assert_eq!(s, StatusCode::OK);
    let _ = app.login("admin", common::ADMIN_PASSWORD).await;
    app.finish().await;
}

async fn race(backend: common::Backend) {
    let _serial = SERIAL.lock().await;
    let app = common::spawn_with(
        backend,
        common::Opts {
            args: vec!["--login-throttle".into(), "10/min".into()],
            ..Default::default()
        },
    )
    .await;
    let got = statuses(&app, 30, "admin").await;
    let unauthorized = got
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = got
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        unauthorized <= 10,
        "{unauthorized} wrong passwords checked: {got:?}"
    );
    assert_eq!(unauthorized + throttled, 30, "{got:?}");
    // Once ten failures are counted the limit holds, also for the right password (attempts
    // refused because hashing was busy are not counted).
    if unauthorized == 10 {
        let resp = attempt(&app, "admin", common::ADMIN_PASSWORD, None).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_logins_are_throttled_sqlite() {
    race(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_logins_are_throttled_postgres() {
    race(common::Backend::Postgres).await;
}

async fn forwarded_and_per_user(backend: common::Backend) {
    let _serial = SERIAL.lock().await;
    let app = common::spawn_with(
        backend,
        common::Opts {
            args: vec![
                "--trusted-proxies".into(),
                "127.0.0.1,10.9.9.9".into(),
                "--login-throttle".into(),
                "2/min".into(),
                "--login-throttle-user".into(),
                "5/10min".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    // The client writes the leftmost entries; the proxy appends the address it saw. Varying
    // the client's part gains nothing.
    for (i, want) in [
        StatusCode::UNAUTHORIZED,
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
    ]
    .into_iter()
    .enumerate()
    {
        let xff = format!("203.0.113.{i}, 198.51.100.7, 10.9.9.9");
        let resp = attempt(&app, "admin", "wrong", Some(&xff)).await;
        assert_eq!(resp.status(), want, "attempt {i}");
    }
    // Another client address has its own window ...
    let resp = attempt(&app, "admin", "wrong", Some("198.51.100.8")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = attempt(&app, "admin", "wrong", Some("198.51.100.9")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // ... but the user name's window counts every address: 4 failures so far, the 5th passes,
    // the 6th (from yet another address) is refused.
    let resp = attempt(&app, "admin", "wrong", Some("198.51.100.10")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = attempt(&app, "admin", "wrong", Some("198.51.100.11")).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other users are not affected.
    let resp = attempt(&app, "someone", "wrong", Some("198.51.100.11")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    app.finish().await;

    // `off` disables the user name window.
    let app = common::spawn_with(
        backend,
        common::Opts {
            args: vec![
                "--trusted-proxies".into(),
                "127.0.0.1".into(),
                "--login-throttle".into(),
                "2/min".into(),
                "--login-throttle-user".into(),
                "off".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    for i in 0..6 {
        let resp = attempt(&app, "admin", "wrong", Some(&format!("198.51.100.{i}"))).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_and_user_window_sqlite() {
    forwarded_and_per_user(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_and_user_window_postgres() {
    forwarded_and_per_user(common::Backend::Postgres).await;
}

/// Two replicas on one PostgreSQL count the same attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_throttle() {
    let _serial = SERIAL.lock().await;
    let app = common::spawn_with(
        common::Backend::Postgres,
        common::Opts {
            args: vec!["--login-throttle".into(), "3/min".into()],
            ..Default::default()
        },
    )
    .await;
    let mut config = mojo_server::config::Cli::parse_from([
        "mojo-server",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--login-throttle",
        "3/min",
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
    let replica_base = format!("http://{}", replica.local_addr().unwrap());
    let replica_state = replica.state.clone();
    let replica_task = tokio::spawn(replica.run());
    let on = |base: String| {
        let client = app.client.clone();
        async move {
            client
                .post(format!("{base}/api/token/"))
                .json(&json!({"username": "admin", "password": "wrong"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(on(app.base.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(on(replica_base.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(on(app.base.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        on(replica_base.clone()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(on(app.base.clone()).await, StatusCode::TOO_MANY_REQUESTS);
    replica_state.shutdown.cancel();
    let _ = replica_task.await;
    app.finish().await;
}
