//! Platform behaviour through HTTP on both backends: auth, the DRF error table, the list engine
//! (search, filters, ordering, pagination) on users and groups, trailing slashes, operations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn make_users(app: &common::TestApp, names: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for n in names {
        let (s, b) = app
            .post(
                "/api/users/",
                json!({"username": n, "password": "pw-12345", "email": format!("{n}@example.org")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        ids.push(b["id"].as_i64().unwrap());
    }
    ids
}

fn usernames(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

both!(authentication, |app: common::TestApp| async move {
    // The guide's Authenticate block: token, then /api/users/me/.
    let (s, me) = app.get("/api/users/me/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_superuser"], true);
    assert_eq!(me["groups"], json!([1]));

    // Form bodies work like JSON.
    let resp = app
        .client
        .post(format!("{}/api/token/", app.base))
        .form(&[("username", "admin"), ("password", common::ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let pair: Value = resp.json().await.unwrap();
    let refresh = pair["refresh"].as_str().unwrap().to_string();
    let keys: Vec<&String> = pair.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["refresh", "access"]);

    // Wrong password.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/token/",
            Some(json!({"username": "admin", "password": "nope"})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b,
        json!({"detail": "No active account found with the given credentials"})
    );

    // Missing fields.
    let (s, b) = app.call(Method::POST, "/api/token/", None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );

    // Refresh, verify, blacklist.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/token/refresh/",
            Some(json!({"refresh": refresh})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let access = b["access"].as_str().unwrap().to_string();
    assert!(b.get("refresh").is_none());
    let (s, _) = app
        .call(Method::GET, "/api/users/me/", None, Some(&access))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .call(
            Method::POST,
            "/api/token/verify/",
            Some(json!({"token": access})),
            None,
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({})));
    let (s, b) = app
        .call(
            Method::POST,
            "/api/token/verify/",
            Some(json!({"token": "garbage"})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b,
        json!({"detail": "Token is invalid", "code": "token_not_valid"})
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/token/blacklist/",
            Some(json!({"refresh": refresh})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .call(
            Method::POST,
            "/api/token/refresh/",
            Some(json!({"refresh": refresh})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );

    // A refresh token is not an access token.
    let resp = app
        .client
        .get(format!("{}/api/users/me/", app.base))
        .bearer_auth(&refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers().get("www-authenticate").unwrap(),
        "Bearer realm=\"api\""
    );
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["code"], "token_not_valid");
    assert_eq!(b["messages"][0]["message"], "Token has wrong type");
    app
});

both!(error_table, |app: common::TestApp| async move {
    // 401 without credentials, with the Bearer challenge.
    let resp = app
        .client
        .get(format!("{}/api/users/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"api\"");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Authentication credentials were not provided."})
    );
    // Malformed header.
    let resp = app
        .client
        .get(format!("{}/api/users/me/", app.base))
        .header("Authorization", "Bearer")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "bad_authorization_header"
    );

    // 403 for a non-superuser on superuser-only resources.
    let (_, token) = app.user("plain", &[1]).await;
    let (s, b) = app
        .call(Method::GET, "/api/users/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        b,
        json!({"detail": "You do not have permission to perform this action."})
    );
    let (s, _) = app
        .call(Method::GET, "/api/users/me/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::OK);

    // 404: missing object, non-integer id, unknown path.
    assert_eq!(
        app.get("/api/users/999999/").await,
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "No User matches the given query."})
        )
    );
    assert_eq!(
        app.get("/api/groups/999999/").await,
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "No Group matches the given query."})
        )
    );
    assert_eq!(
        app.get("/api/users/abc/").await,
        (StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
    );
    assert_eq!(
        app.get("/api/no-such-thing/").await,
        (StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
    );

    // 405 with Allow.
    let resp = app.req(Method::DELETE, "/api/users/").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = resp.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Method \"DELETE\" not allowed."})
    );

    // 415 and malformed JSON.
    let resp = app
        .req(Method::POST, "/api/groups/")
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    let resp = app
        .req(Method::POST, "/api/groups/")
        .header("Content-Type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let b: Value = resp.json().await.unwrap();
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{b}"
    );

    // Empty body: required-field errors; a list body: non_field_errors.
    assert_eq!(
        app.call(Method::POST, "/api/groups/", None, Some(&app.token.clone()))
            .await,
        (
            StatusCode::BAD_REQUEST,
            json!({"name": ["This field is required."]})
        )
    );
    assert_eq!(
        app.post("/api/groups/", json!([1])).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        )
    );
    // Field validation reports all fields at once; unique names; lengths; NUL bytes.
    let (s, b) = app
        .post(
            "/api/users/",
            json!({"username": "", "is_superuser": "maybe", "groups": [999]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["username"], json!(["This field may not be blank."]));
    assert_eq!(b["is_superuser"], json!(["Must be a valid boolean."]));
    assert_eq!(b["password"], json!(["This field is required."]));
    assert_eq!(
        b["groups"],
        json!(["Invalid pk \"999\" - object does not exist."])
    );
    let (s, b) = app.post("/api/groups/", json!({"name": "Default"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"name": ["group with this name already exists."]}));
    let (s, b) = app
        .post("/api/groups/", json!({"name": "x".repeat(151)}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"name": ["Ensure this field has no more than 150 characters."]})
    );
    let (s, _) = app.post("/api/groups/", json!({"name": "a\u{0}b"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.get("/api/users/?search=a%00b").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Body too large: 413 with a detail (on its own client: the server closes that connection).
    let resp = reqwest::Client::new()
        .post(format!("{}/api/groups/", app.base))
        .bearer_auth(&app.token)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 11 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(resp.json::<Value>().await.unwrap()["detail"].is_string());

    // Group 1 cannot be deleted.
    let (s, b) = app.delete("/api/groups/1/").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["detail"].as_str().unwrap().contains("Default"));
    app
});

both!(pagination, |app: common::TestApp| async move {
    let names: Vec<String> = (0..7).map(|i| format!("page-user-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    make_users(&app, &refs).await;
    // 8 users in all (admin + 7). Unpaginated: the envelope with everything.
    let (s, b) = app.get("/api/users/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["count"], 8);
    assert_eq!(b["next"], Value::Null);
    assert_eq!(b["results"].as_array().unwrap().len(), 8);

    let (s, b) = app
        .get("/api/users/?page_size=3&ordering=-username&page=2")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["count"], 8);
    assert_eq!(
        b["next"],
        format!(
            "{}/api/users/?ordering=-username&page=3&page_size=3",
            app.base
        )
    );
    assert_eq!(
        b["previous"],
        format!("{}/api/users/?ordering=-username&page_size=3", app.base)
    );
    assert_eq!(usernames(&b), ["page-user-3", "page-user-2", "page-user-1"]);
    let (_, b) = app.get("/api/users/?page_size=3&page=3").await;
    assert_eq!(b["next"], Value::Null);
    assert_eq!(
        b["previous"],
        format!("{}/api/users/?page=2&page_size=3", app.base)
    );
    assert_eq!(b["results"].as_array().unwrap().len(), 2);
    let (_, b) = app.get("/api/users/?page_size=3&page=last").await;
    assert_eq!(b["results"].as_array().unwrap().len(), 2);

    // Clamp to 1000, junk page_size means unpaginated.
    let (_, b) = app.get("/api/users/?page_size=5000").await;
    assert_eq!(b["results"].as_array().unwrap().len(), 8);
    let (_, b) = app.get("/api/users/?page_size=junk").await;
    assert_eq!(b["count"], 8);

    // Invalid pages.
    for q in [
        "page=0",
        "page=9&page_size=3",
        "page=x&page_size=3",
        "page=-1",
    ] {
        let (s, b) = app.get(&format!("/api/users/?{q}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{q}");
        assert_eq!(b, json!({"detail": "Invalid page."}));
    }
    // Page 1 of an empty result is fine.
    let (s, b) = app
        .get("/api/users/?search=nobody-matches&page=1&page_size=5")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    app
});

both!(search_filter_ordering, |app: common::TestApp| async move {
    make_users(
        &app,
        &[
            "Alpha-Rack1",
            "beta-rack2",
            "Gamma",
            "ÉCOLE-rack",
            "per%cent",
        ],
    )
    .await;
    // Case-insensitive, multi-term AND, commas split, quoted phrases kept.
    let (_, b) = app.get("/api/users/?search=RACK").await;
    assert_eq!(usernames(&b), ["Alpha-Rack1", "beta-rack2", "ÉCOLE-rack"]);
    let (_, b) = app.get("/api/users/?search=rack+alpha").await;
    assert_eq!(usernames(&b), ["Alpha-Rack1"]);
    let (_, b) = app.get("/api/users/?search=rack,beta").await;
    assert_eq!(usernames(&b), ["beta-rack2"]);
    let (_, b) = app.get("/api/users/?search=%22beta-rack2%22").await;
    assert_eq!(usernames(&b), ["beta-rack2"]);
    // Unicode case folding on both backends.
    let (_, b) = app.get("/api/users/?search=%C3%A9cole").await;
    assert_eq!(usernames(&b), ["ÉCOLE-rack"]);
    // % and _ are literal.
    let (_, b) = app.get("/api/users/?search=%25").await;
    assert_eq!(usernames(&b), ["per%cent"]);
    let (_, b) = app.get("/api/users/?search=_").await;
    assert_eq!(b["count"], 0);
    // Search matches other declared fields (email).
    let (_, b) = app.get("/api/users/?search=gamma%40example").await;
    assert_eq!(usernames(&b), ["Gamma"]);
    // Empty search: no filtering.
    let (_, b) = app.get("/api/users/?search=").await;
    assert_eq!(b["count"], 6);

    // Ordering: descending, unknown fields dropped, id tiebreaker.
    let (_, b) = app.get("/api/users/?ordering=-username").await;
    let names = usernames(&b);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(names, sorted);
    let (_, b) = app.get("/api/users/?ordering=nonsense").await;
    assert_eq!(usernames(&b)[0], "admin");
    let (_, b) = app.get("/api/users/?ordering=nonsense,-id").await;
    assert_eq!(usernames(&b)[0], "per%cent");
    // NULLs last ascending (only admin has logged in).
    let (_, b) = app.get("/api/users/?ordering=last_login").await;
    assert_eq!(usernames(&b)[0], "admin");
    let (_, b) = app.get("/api/users/?ordering=-last_login").await;
    assert_eq!(usernames(&b).last().unwrap(), "admin");

    // Filters: exact and case-sensitive; booleans; unknown parameters ignored; empty skipped.
    let (_, b) = app.get("/api/users/?username=Gamma").await;
    assert_eq!(usernames(&b), ["Gamma"]);
    let (_, b) = app.get("/api/users/?username=gamma").await;
    assert_eq!(b["count"], 0);
    let (_, b) = app.get("/api/users/?is_superuser=true").await;
    assert_eq!(usernames(&b), ["admin"]);
    let (_, b) = app.get("/api/users/?is_superuser=0&bogus=1").await;
    assert_eq!(b["count"], 5);
    let (_, b) = app.get("/api/users/?is_superuser=").await;
    assert_eq!(b["count"], 6);
    app
});

both!(users_and_groups_crud, |app: common::TestApp| async move {
    let (s, g) = app.post("/api/groups/", json!({"name": "ops"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let gid = g["id"].as_i64().unwrap();
    assert!(gid > 1);
    let (s, u) = app
        .post(
            "/api/users/",
            json!({"username": "eve", "password": "secret-pw", "groups": [gid]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(u.get("password").is_none());
    let uid = u["id"].as_i64().unwrap();
    let (_, g) = app.get(&format!("/api/groups/{gid}/")).await;
    assert_eq!(g["users"], json!([uid]));
    // PATCH changes only what is sent; PUT needs the required fields.
    let (s, u) = app
        .patch(&format!("/api/users/{uid}/"), json!({"first_name": "Eve"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(u["first_name"], "Eve");
    assert_eq!(u["groups"], json!([gid]));
    let (s, b) = app
        .put(&format!("/api/users/{uid}/"), json!({"email": "e@x.org"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"username": ["This field is required."]}));
    let (s, b) = app
        .post("/api/users/", json!({"username": "eve", "password": "x"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"username": ["A user with that username already exists."]})
    );
    // The new password works; the old token of a deactivated user stops working.
    let token = app.login("eve", "secret-pw").await;
    let (s, _) = app
        .patch(&format!("/api/users/{uid}/"), json!({"is_active": false}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .call(Method::GET, "/api/users/me/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(b["code"], "user_inactive");
    let (s, _) = app.delete(&format!("/api/groups/{gid}/")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.delete(&format!("/api/users/{uid}/")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/users/{uid}/")).await.0,
        StatusCode::NOT_FOUND
    );
    app
});

both!(slashes_and_operations, |app: common::TestApp| async move {
    // GET without the slash: 301 with the query kept; POST without it is served.
    let resp = app
        .req(Method::GET, "/api/users?page=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(resp.headers()["location"], "/api/users/?page=1");
    let resp = app
        .req(Method::GET, "/api/schema/swagger-ui")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    let (s, _) = app.post("/api/groups", json!({"name": "noslash"})).await;
    assert_eq!(s, StatusCode::CREATED);
    // Operations endpoints.
    let (s, b) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, b["status"].clone()), (StatusCode::OK, json!("ok")));
    let (s, _) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = b.as_str().unwrap();
    // The same series whatever order the exposition gives its labels in.
    assert!(
        text.lines()
            .any(|l| l.starts_with("mojo_http_requests_total{")
                && [
                    "route=\"/api/groups/\"",
                    "method=\"POST\"",
                    "status=\"201\""
                ]
                .iter()
                .all(|label| l.contains(label))),
        "{text}"
    );
    // Request ids are returned.
    let resp = app.req(Method::GET, "/api/users/me/").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"].len(), 16);
    // gzip on request.
    let resp = app
        .req(Method::GET, "/api/users/")
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    app
});

#[tokio::test]
async fn login_failures_are_throttled() {
    let app = common::spawn_with(
        common::Backend::Sqlite,
        common::Opts {
            args: vec!["--login-throttle".into(), "3/min".into()],
            ..Default::default()
        },
    )
    .await;
    for _ in 0..3 {
        let (s, _) = app
            .call(
                Method::POST,
                "/api/token/",
                Some(json!({"username": "admin", "password": "bad"})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .client
        .post(format!("{}/api/token/", app.base))
        .json(&json!({"username": "admin", "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let b: Value = resp.json().await.unwrap();
    assert!(b["detail"]
        .as_str()
        .unwrap()
        .starts_with("Request was throttled. Expected available in "));
    // Another username from the same client is not affected.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/token/",
            Some(json!({"username": "someone", "password": "bad"})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

#[tokio::test]
async fn https_with_generated_certificate() {
    let app = common::spawn_with(
        common::Backend::Sqlite,
        common::Opts {
            tls: true,
            ..Default::default()
        },
    )
    .await;
    assert!(app.base.starts_with("https://"));
    let (s, b) = app.get("/api/users/me/").await;
    assert_eq!((s, b["username"].clone()), (StatusCode::OK, json!("admin")));
    let cert = app.data_dir.path().join("tls/cert.pem");
    assert!(std::fs::read_to_string(&cert)
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    app.finish().await;
}
