//! Signed media URLs for BMCs and authenticated catalogue downloads, on both backends:
//! signatures, expiry, HEAD, ranges, the plain-HTTP media listener, duplicate and empty uploads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use mojo_server::db::catalogue::Kind;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn upload(app: &common::TestApp, path: &str, form: Form) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(format!("{}{}", app.base, path))
        .bearer_auth(&app.token)
        .multipart(form)
        .send()
        .await
        .expect("sent");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A request without credentials for `path` on the API listener, for bytes `range` when given.
async fn fetch(
    app: &common::TestApp,
    method: Method,
    path: &str,
    range: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.request(method, format!("{}{path}", app.base));
    if let Some(range) = range {
        req = req.header("Range", range);
    }
    req.send().await.unwrap()
}

fn firmware_form(data: &[u8], name: &str) -> Form {
    Form::new()
        .text("name", "BIOS")
        .text("firmware_type", "BIOS")
        .text("version", "2.0")
        .part(
            "file",
            Part::bytes(data.to_vec()).file_name(name.to_string()),
        )
}

fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

both!(signed_media_urls, |app: common::TestApp| async move {
    let data = content(200_000);
    let (s, fw) = upload(
        &app,
        "/api/firmware/",
        firmware_form(&data, "BIOS 2.0 (R650).bin"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{fw}");
    let id = fw["id"].as_i64().unwrap();
    let path = app
        .state
        .ctx
        .media
        .path(Kind::Firmware, id, "BIOS 2.0 (R650).bin");
    assert!(
        path.starts_with(&format!("/media/firmware/{id}/")),
        "{path}"
    );
    assert!(path.ends_with("/BIOS_2.0__R650_.bin"), "{path}");
    assert!(!path.contains('?'));

    // No token needed; the whole file.
    let r = fetch(&app, Method::GET, &path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());

    // HEAD: the length, no body.
    let r = fetch(&app, Method::HEAD, &path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "200000");

    // A range: 206 with exactly those bytes.
    let r = fetch(&app, Method::GET, &path, Some("bytes=100-199")).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/200000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[100..200]);
    let r = fetch(&app, Method::GET, &path, Some("bytes=-10")).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[199_990..]);
    let r = fetch(&app, Method::GET, &path, Some("bytes=300000-")).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // The file name is not signed; anything else is.
    let parts: Vec<&str> = path.split('/').collect();
    // ["", "media", "firmware", id, expires, sig, name]
    let other_name = format!(
        "/{}/{}/{}/{}/{}/other.bin",
        parts[1], parts[2], parts[3], parts[4], parts[5]
    );
    let r = fetch(&app, Method::GET, &other_name, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut sig = parts[5].to_string();
    let flipped = if sig.ends_with('0') { '1' } else { '0' };
    sig.pop();
    sig.push(flipped);
    let tampered = [
        format!("/media/firmware/{id}/{}/{sig}/{}", parts[4], parts[6]),
        format!("/media/os/{id}/{}/{}/{}", parts[4], parts[5], parts[6]),
        format!(
            "/media/firmware/{}/{}/{}/{}",
            id + 1,
            parts[4],
            parts[5],
            parts[6]
        ),
        format!(
            "/media/firmware/{id}/{}/{}/{}",
            parts[4].parse::<u64>().unwrap() + 1,
            parts[5],
            parts[6]
        ),
        format!("/media/firmware/{id}/1/{}/{}", parts[5], parts[6]),
        format!("/media/firmware/{id}/{}/zz/{}", parts[4], parts[6]),
        format!("/media/bogus/{id}/{}/{}/{}", parts[4], parts[5], parts[6]),
    ];
    for t in tampered {
        for m in [Method::GET, Method::HEAD] {
            let r = app
                .client
                .request(m.clone(), format!("{}{t}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{m} {t}");
            let body = r.bytes().await.unwrap();
            assert!(body.len() < 100, "nothing of the file is served for {t}");
        }
    }
    // An expired but correctly signed URL.
    let past = 1_000_000u64;
    let sig = app.state.ctx.media.signature(Kind::Firmware, id, past);
    let r = app
        .client
        .get(format!(
            "{}/media/firmware/{id}/{past}/{sig}/x.bin",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app
});

both!(
    downloads_and_duplicates,
    |app: common::TestApp| async move {
        let data = content(70_000);
        let (s, fw) = upload(&app, "/api/firmware/", firmware_form(&data, "fw.bin")).await;
        assert_eq!(s, StatusCode::CREATED, "{fw}");
        let id = fw["id"].as_i64().unwrap();
        let sha = fw["sha256"].as_str().unwrap().to_string();

        // Authenticated download, streamed.
        let r = app
            .req(Method::GET, &format!("/api/firmware/{id}/download/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("fw.bin"));
        assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
        let r = fetch(
            &app,
            Method::GET,
            &format!("/api/firmware/{id}/download/"),
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let (_, user) = app.user("reader", &[1]).await;
        let r = app
            .client
            .get(format!("{}/api/firmware/{id}/download/", app.base))
            .bearer_auth(&user)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // Never compressed: the length and ranges stay those of the file.
        let r = app
            .req(Method::GET, &format!("/api/firmware/{id}/download/"))
            .header("Accept-Encoding", "gzip")
            .header("Range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-length"], "10");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..10]);
        let (s, b) = app.get("/api/firmware/999/download/").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        assert_eq!(b["detail"], "No Firmware matches the given query.");

        // The same content again is refused, naming the existing entry.
        let (s, b) = upload(&app, "/api/firmware/", firmware_form(&data, "copy.bin")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(
            b["file"][0],
            format!("Firmware {id} has the same content (sha256 {sha}).")
        );
        // An empty file: DRF's text.
        let (s, b) = upload(&app, "/api/firmware/", firmware_form(b"", "empty.bin")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["file"][0], "The submitted file is empty.");
        let (_, list) = app.get("/api/firmware/").await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

        // OS images likewise.
        let iso = content(50_000);
        let form = || {
            Form::new()
                .text("name", "Ubuntu")
                .text("os_family", "linux")
                .part("file", Part::bytes(iso.clone()).file_name("ubuntu.iso"))
        };
        let (s, os) = upload(&app, "/api/os/", form()).await;
        assert_eq!(s, StatusCode::CREATED, "{os}");
        let os_id = os["id"].as_i64().unwrap();
        let (s, b) = upload(&app, "/api/os/", form()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b["file"][0]
                .as_str()
                .unwrap()
                .starts_with(&format!("OS image {os_id} has the same content (sha256 ")),
            "{b}"
        );
        let r = app
            .req(Method::GET, &format!("/api/os/{os_id}/download/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().len(), 50_000);
        let path = app.state.ctx.media.path(Kind::Os, os_id, "ubuntu.iso");
        let r = fetch(&app, Method::HEAD, &path, None).await;
        assert_eq!(r.headers()["content-length"], "50000");
        app
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_listener_serves_only_media() {
    let app = common::TestApp::builder(common::Backend::Sqlite)
        .args(["--media-listen", "127.0.0.1:0"])
        .tls(true)
        .spawn()
        .await;
    let data = content(10_000);
    let (s, fw) = upload(&app, "/api/firmware/", firmware_form(&data, "a.bin")).await;
    assert_eq!(s, StatusCode::CREATED, "{fw}");
    let id = fw["id"].as_i64().unwrap();
    let bmc: std::net::SocketAddr = "127.71.250.1:443".parse().unwrap();
    let url = app
        .state
        .ctx
        .media
        .url_for(Kind::Firmware, id, "a.bin", bmc)
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        !url.starts_with(&app.base),
        "the media listener, not the API's: {url}"
    );
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), 10_000);
    let origin = url.split("/media/").next().unwrap();
    let r = app
        .client
        .get(format!("{origin}/api/firmware/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_base_url_setting() {
    let app = common::TestApp::builder(common::Backend::Sqlite)
        .args(["--media-base-url", "https://media.example:9000/"])
        .spawn()
        .await;
    let bmc: std::net::SocketAddr = "127.71.250.1:443".parse().unwrap();
    let url = app
        .state
        .ctx
        .media
        .url_for(Kind::Firmware, 5, "x y.bin", bmc)
        .unwrap();
    assert!(
        url.starts_with("https://media.example:9000/media/firmware/5/"),
        "{url}"
    );
    assert!(url.ends_with("/x_y.bin"), "{url}");
    app.finish().await;
}
