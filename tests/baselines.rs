//! Firmware baselines through HTTP on both backends: who may write, the bare-array list (newest
//! first, filter and search), validation, binaries in use, and the compliance view's parameters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;

async fn firmware(app: &common::TestApp, tag: &str) -> i64 {
    let form = Form::new()
        .text("name", format!("fw {tag}"))
        .text("firmware_type", "BIOS")
        .text("version", "1.0")
        .part(
            "file",
            Part::bytes(format!("VERSION=1.0\n{tag}\n").into_bytes()).file_name("f.bin"),
        );
    app.upload_created("/api/firmware/", form).await
}

both!(baseline_crud, |app: common::TestApp| async move {
    let a = firmware(&app, "a").await;
    let b = firmware(&app, "b").await;
    let (s, one) = app
        .post(
            "/api/firmware_baseline/",
            json!({"name": "gen1", "description": "first rack", "firmware_binaries": [b, a]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{one}");
    assert_eq!(one["firmware_binaries"], json!([b, a]), "order kept");
    assert_eq!(one["created_by"], 1);
    assert!(one["created_at"].is_string() && one["updated_at"].is_string());
    let id1 = one["id"].as_i64().unwrap();
    let (s, two) = app
        .post("/api/firmware_baseline/", json!({"name": "gen2"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{two}");
    assert_eq!(two["description"], "");
    assert_eq!(two["firmware_binaries"], json!([]));
    let id2 = two["id"].as_i64().unwrap();

    // A bare array, newest first; filter and search.
    let (s, list) = app.get("/api/firmware_baseline/").await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![id2, id1]);
    let (_, list) = app.get("/api/firmware_baseline/?name=gen1").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/firmware_baseline/?search=RACK").await;
    assert_eq!(list.as_array().unwrap()[0]["id"], id1);
    let (_, page) = app.get("/api/firmware_baseline/?page_size=1").await;
    assert_eq!(page["count"], 2, "{page}");
    // The default order is the list's own: no parameter the client did not send in the links.
    assert_eq!(page["results"][0]["id"], id2, "{page}");
    let next = page["next"].as_str().unwrap_or_default();
    assert!(
        next.ends_with("/api/firmware_baseline/?page=2&page_size=1"),
        "{page}"
    );
    let (_, page) = app
        .get(
            next.split_once("/api/")
                .map(|(_, p)| format!("/api/{p}"))
                .unwrap()
                .as_str(),
        )
        .await;
    assert_eq!(page["results"][0]["id"], id1, "{page}");
    let (_, list) = app.get("/api/firmware_baseline/?ordering=").await;
    assert_eq!(list[0]["id"], id2, "an empty ordering is none: {list}");

    // Validation.
    let (s, e) = app
        .post("/api/firmware_baseline/", json!({"name": "gen1"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["name"][0],
        "firmware baseline with this name already exists."
    );
    let (s, e) = app
        .post(
            "/api/firmware_baseline/",
            json!({"name": "x", "firmware_binaries": [a, 999]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["firmware_binaries"][0],
        "Invalid pk \"999\" - object does not exist."
    );
    let (s, e) = app.post("/api/firmware_baseline/", json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["name"][0], "This field is required.");

    // Updates.
    let (s, p) = app
        .patch(
            &format!("/api/firmware_baseline/{id2}/"),
            json!({"firmware_binaries": [a]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["firmware_binaries"], json!([a]));
    assert_eq!(p["name"], "gen2");
    let (s, p) = app
        .put(
            &format!("/api/firmware_baseline/{id2}/"),
            json!({"description": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    let (s, p) = app
        .patch(
            &format!("/api/firmware_baseline/{id2}/"),
            json!({"name": "gen1"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");

    // Everyone reads, only superusers write.
    let (_, user) = app.user("viewer", &[1]).await;
    let (s, _) = app
        .call(
            reqwest::Method::GET,
            "/api/firmware_baseline/",
            None,
            Some(&user),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            "/api/firmware_baseline/",
            Some(json!({"name": "u"})),
            Some(&user),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/firmware_baseline/{id1}/"),
            None,
            Some(&user),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A binary in use cannot be deleted; one no longer used can.
    let (s, e) = app.delete(&format!("/api/firmware/{b}/")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["detail"],
        format!("Firmware {b} is used by firmware baseline {id1} (gen1).")
    );
    let (s, _) = app.delete(&format!("/api/firmware_baseline/{id1}/")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.delete(&format!("/api/firmware/{b}/")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = app.get(&format!("/api/firmware_baseline/{id1}/")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["detail"], "No FirmwareBaseline matches the given query.");

    // Compliance without servers, and its parameters.
    let (s, c) = app
        .get(&format!("/api/firmware_baseline/{id2}/compliance/"))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(
        c,
        json!({"baseline": id2, "status": "compliant", "servers": []})
    );
    let (s, e) = app
        .get(&format!(
            "/api/firmware_baseline/{id2}/compliance/?server=77"
        ))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["server"][0],
        "Select a valid choice. That choice is not one of the available choices."
    );
    let (s, e) = app
        .get(&format!(
            "/api/firmware_baseline/{id2}/compliance/?resource_pool=x"
        ))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = app.get("/api/firmware_baseline/999/compliance/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = app
        .post("/api/firmware_baseline/999/apply/", json!({"servers": [1]}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, e) = app
        .post(
            &format!("/api/firmware_baseline/{id2}/apply/"),
            json!({"servers": [12345]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["servers"][0],
        "Invalid pk \"12345\" - object does not exist."
    );
    let (s, e) = app
        .post(&format!("/api/firmware_baseline/{id2}/apply/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    app
});
