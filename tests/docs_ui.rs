//! The documentation UIs: Swagger UI and ReDoc are served by the binary, render the API's
//! operations in a real (headless) browser, and make no request beyond the server.
//!
//! Chromium comes from Debian's `chromium` package; `tests/setup-chromium.sh` installs it when
//! missing (set `MOJO_CHROMIUM` to use another binary). The browser's DNS and proxy are pointed
//! at nothing, so only 127.0.0.1 is reachable; its net log then shows what the page tried.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Chromium binary, installed by `tests/setup-chromium.sh` if missing.
async fn chromium() -> PathBuf {
    let out = tokio::process::Command::new("bash")
        .arg(repo().join("tests/setup-chromium.sh"))
        .output()
        .await
        .expect("run tests/setup-chromium.sh");
    assert!(
        out.status.success(),
        "tests/setup-chromium.sh could not provide Chromium ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::env::var_os("MOJO_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What a page became after its scripts ran, and what it fetched.
struct Rendered {
    dom: String,
    /// URLs the page itself requested (the navigation excluded): from the net log, requests
    /// whose initiator is a web origin. Chromium's own background calls have none.
    page_requests: Vec<String>,
}

async fn render(browser: &Path, url: &str) -> Rendered {
    let dir = tempfile::tempdir().expect("tempdir");
    let net_log = dir.path().join("net-log.json");
    let mut cmd = tokio::process::Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
        "--virtual-time-budget=15000",
        "--dump-dom",
    ])
    .arg(format!(
        "--user-data-dir={}",
        dir.path().join("profile").display()
    ))
    .arg(format!("--log-net-log={}", net_log.display()))
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("Chromium finished within 120 s")
        .expect("run Chromium");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !dom.is_empty(),
        "Chromium failed on {url} ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&net_log).expect("net log written");
    // A log cut short by an unclean exit lacks its closing brackets.
    let log: Value = serde_json::from_str(&log)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", log.trim_end().trim_end_matches(','))))
        .expect("net log is JSON");
    let mut page_requests = Vec::new();
    for event in log["events"].as_array().into_iter().flatten() {
        let params = &event["params"];
        let (Some(url), Some(initiator)) = (params["url"].as_str(), params["initiator"].as_str())
        else {
            continue;
        };
        if initiator.starts_with("http") && !page_requests.iter().any(|u| u == url) {
            page_requests.push(url.to_string());
        }
    }
    Rendered { dom, page_requests }
}

fn assert_local_only(page: &str, rendered: &Rendered, base: &str) {
    assert!(
        !rendered.page_requests.is_empty(),
        "{page}: no request seen in the net log"
    );
    let outside: Vec<&String> = rendered
        .page_requests
        .iter()
        .filter(|u| !u.starts_with(&format!("{base}/")))
        .collect();
    assert!(
        outside.is_empty(),
        "{page} requested something beyond the server: {outside:#?}"
    );
    let schema = format!("{base}/api/schema/?format=json");
    assert!(
        rendered.page_requests.contains(&schema),
        "{page} did not load the schema: {:#?}",
        rendered.page_requests
    );
}

#[tokio::test]
async fn swagger_ui_and_redoc_render_offline_in_a_browser() {
    let browser = chromium().await;
    let app = common::spawn(common::Backend::Sqlite).await;

    let swagger = render(&browser, &format!("{}/api/schema/swagger-ui/", app.base)).await;
    for expected in [
        "id=\"operations-users-users_list\"",
        "data-path=\"/api/users/\"",
        "id=\"operations-token-token_create\"",
        "btn authorize",
    ] {
        assert!(
            swagger.dom.contains(expected),
            "Swagger UI lacks {expected}:\n{}",
            swagger.dom
        );
    }
    assert_local_only("Swagger UI", &swagger, &app.base);
    let assets = format!("{}/api/schema/swagger-ui/swagger-ui-bundle.js", app.base);
    assert!(
        swagger.page_requests.contains(&assets),
        "{:#?}",
        swagger.page_requests
    );

    let redoc = render(&browser, &format!("{}/api/schema/redoc/", app.base)).await;
    for expected in [
        "id=\"operation/users_list\"",
        "id=\"operation/token_create\"",
        "/api/users/",
    ] {
        assert!(redoc.dom.contains(expected), "ReDoc lacks {expected}");
    }
    assert_local_only("ReDoc", &redoc, &app.base);
}

#[tokio::test]
async fn docs_pages_are_served_by_the_binary() {
    let app = common::spawn(common::Backend::Sqlite).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();

    // Without the slash: 301 (the trailing-slash rule), no authentication anywhere.
    for (path, target) in [
        ("/api/schema/swagger-ui", "/api/schema/swagger-ui/"),
        ("/api/schema/redoc", "/api/schema/redoc/"),
        ("/api/schema", "/api/schema/"),
    ] {
        let resp = get(path).await.expect("GET");
        assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY, "{path}");
        assert_eq!(resp.headers()[LOCATION], target, "{path}");
    }

    let resp = get("/api/schema/swagger-ui/").await.expect("GET");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(resp.headers().contains_key(CONTENT_SECURITY_POLICY));
    let index = resp.text().await.expect("body");
    assert!(
        !index.contains("src=\"http") && !index.contains("href=\"http"),
        "{index}"
    );

    // Assets below the UI path are not touched by the trailing-slash rule.
    for (asset, content_type) in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui-standalone-preset.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("index.css", "text/css"),
        ("swagger-initializer.js", "text/javascript"),
    ] {
        let resp = get(&format!("/api/schema/swagger-ui/{asset}"))
            .await
            .expect("GET");
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
        assert_eq!(resp.headers()[CONTENT_TYPE], content_type, "{asset}");
    }
    let init = get("/api/schema/swagger-ui/swagger-initializer.js")
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    for setting in [
        "\"url\": \"/api/schema/?format=json\"",
        "\"persistAuthorization\": true",
        "\"validatorUrl\": \"none\"",
    ] {
        assert!(
            init.contains(setting),
            "swagger-initializer.js lacks {setting}:\n{init}"
        );
    }

    let resp = get("/api/schema/redoc/").await.expect("GET");
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(csp.contains("img-src 'self' data:"), "{csp}");
    let page = resp.text().await.expect("body");
    assert!(page.contains("Redoc.init(\"/api/schema/?format=json\""));
    assert!(
        !page.contains("<script src=") && !page.contains("<link "),
        "ReDoc loads nothing else"
    );
}
