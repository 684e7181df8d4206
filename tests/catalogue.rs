//! Firmware and OS image catalogues through HTTP on both backends: streamed multipart uploads,
//! checksums, the guide's filters, metadata changes and deletes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

async fn upload(
    app: &common::TestApp,
    path: &str,
    form: Form,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}{}", app.base, path))
        .multipart(form);
    req = req.bearer_auth(token.unwrap_or(&app.token));
    let resp = req.send().await.expect("sent");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn file(data: &[u8], name: &str) -> Part {
    Part::bytes(data.to_vec()).file_name(name.to_string())
}

fn stored_files(app: &common::TestApp, dir: &str) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(app.data_dir.path().join(dir)) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

both!(firmware_catalogue, |app: common::TestApp| async move {
    let bios: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let form = Form::new()
        .text("name", "R740 BIOS")
        .text("firmware_type", "BIOS")
        .text("version", "2.1.0")
        .text("manufacturer", "Dell Inc.")
        .text("models", "PowerEdge R740")
        .text("models", "PowerEdge R740xd")
        .part("file", file(&bios, "BIOS_R740.EXE"));
    let (s, b) = upload(&app, "/api/firmware/", form, None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["id"], 1);
    assert_eq!(b["size"], 300_000);
    assert_eq!(b["sha256"], hex::encode(Sha256::digest(&bios)));
    assert_eq!(b["models"], json!(["PowerEdge R740", "PowerEdge R740xd"]));
    assert!(b["created_at"].is_string());
    let files = stored_files(&app, "firmware");
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read(&files[0]).expect("stored"), bios);

    let form = Form::new()
        .text("name", "PERC firmware")
        .text("firmware_type", "lsi_3108")
        .part("file", file(b"perc", "perc.bin"));
    let (s, b) = upload(&app, "/api/firmware/", form, None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["models"], json!([]));
    assert_eq!(b["manufacturer"], "");

    // The guide's lines: a bare array unpaginated, the envelope with pages.
    let (s, b) = app.get("/api/firmware/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b.as_array().map(Vec::len), Some(2), "{b}");
    let (_, b) = app.get("/api/firmware/?firmware_type=BIOS").await;
    assert_eq!(b.as_array().map(Vec::len), Some(1));
    assert_eq!(b[0]["name"], "R740 BIOS");
    let (_, b) = app.get("/api/firmware/?manufacturer=Dell%20Inc.").await;
    assert_eq!(b.as_array().map(Vec::len), Some(1));
    let (_, b) = app.get("/api/firmware/?page_size=1").await;
    assert_eq!(b["count"], 2);
    assert_eq!(b["results"].as_array().map(Vec::len), Some(1));
    let (s, b) = app.get("/api/firmware/1/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["firmware_type"], "BIOS");
    let (s, b) = app.get("/api/firmware/99/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b, json!({"detail": "No Firmware matches the given query."}));

    let (s, b) = app
        .patch(
            "/api/firmware/1/",
            json!({"version": "2.2.0", "models": ["PowerEdge R750"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], "2.2.0");
    assert_eq!(b["models"], json!(["PowerEdge R750"]));
    assert_eq!(b["sha256"], hex::encode(Sha256::digest(&bios)));
    let (s, b) = app.patch("/api/firmware/1/", json!({"name": ""})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"name": ["This field may not be blank."]}));

    // Errors: no file, no name; JSON bodies cannot carry a file.
    let (s, b) = upload(
        &app,
        "/api/firmware/",
        Form::new().text("version", "1"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"name": ["This field is required."], "file": ["No file was submitted."]})
    );
    let (s, b) = app.post("/api/firmware/", json!({"name": "x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"file": ["No file was submitted."]}));
    assert_eq!(stored_files(&app, "firmware").len(), 2);

    // Reads for everyone, writes for superusers.
    let (_, token) = app.user("carol", &[1]).await;
    let (s, _) = app
        .call(Method::GET, "/api/firmware/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::OK);
    let form = Form::new()
        .text("name", "x")
        .part("file", file(b"x", "x.bin"));
    let (s, _) = upload(&app, "/api/firmware/", form, Some(&token)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(Method::DELETE, "/api/firmware/1/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, _) = app.delete("/api/firmware/1/").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(stored_files(&app, "firmware").len(), 1);
    let (s, _) = app.get("/api/firmware/1/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete("/api/firmware/1/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app
});

both!(os_catalogue, |app: common::TestApp| async move {
    for (name, arch) in [("Ubuntu 24.04", "x86_64"), ("Ubuntu 24.04 ARM", "aarch64")] {
        let form = Form::new()
            .text("name", name)
            .text("os_family", "linux")
            .text("version", "24.04")
            .text("arch", arch)
            .part("file", file(name.as_bytes(), "ubuntu.iso"));
        let (s, b) = upload(&app, "/api/os/", form, None).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["arch"], arch);
        assert_eq!(b["size"], name.len());
    }
    let (s, b) = app.get("/api/os/?arch=x86_64").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["count"], 1);
    assert_eq!(b["next"], Value::Null);
    assert_eq!(b["results"][0]["name"], "Ubuntu 24.04");
    let (_, b) = app.get("/api/os/?os_family=linux&ordering=-name").await;
    assert_eq!(b["results"][0]["arch"], "aarch64");
    let (s, b) = app.patch("/api/os/2/", json!({"arch": "arm64"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.get("/api/os/9/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        b,
        json!({"detail": "No OperatingSystem matches the given query."})
    );
    let (s, _) = app.delete("/api/os/2/").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(stored_files(&app, "os").len(), 1);
    app
});

async fn too_large(backend: common::Backend) {
    let opts = common::Opts {
        args: vec!["--max-upload".into(), "1KiB".into()],
        ..Default::default()
    };
    let app = common::spawn_with(backend, opts).await;
    let form = Form::new()
        .text("name", "big")
        .part("file", file(&[7u8; 20_000], "big.bin"));
    let (s, b) = upload(&app, "/api/firmware/", form, None).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert_eq!(
        b,
        json!({"detail": "Upload exceeds the limit of 1024 bytes (MOJO_MAX_UPLOAD)."})
    );
    assert!(stored_files(&app, "firmware").is_empty());
    let form = Form::new()
        .text("name", "small")
        .part("file", file(&[7u8; 1024], "small.bin"));
    let (s, b) = upload(&app, "/api/firmware/", form, None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, b) = app.get("/api/firmware/").await;
    assert_eq!(b.as_array().map(Vec::len), Some(1));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_limit_sqlite() {
    too_large(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_limit_postgres() {
    too_large(common::Backend::Postgres).await;
}
