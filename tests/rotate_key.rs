//! `mojo-server rotate-credential-key`: every stored credential re-sealed under the new key in
//! one transaction, the key check value and the generated key file updated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::Parser;
use mojo_server::app::App;
use mojo_server::config::Cli;
use mojo_server::db::auth_profiles;
use mojo_server::discovery::sealing;
use mojo_server::keys::CredentialKey;

async fn build(dir: &std::path::Path) -> App {
    let args = [
        "mojo-server",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    let mut config = Cli::parse_from(args).config;
    config.injected.admin_password = Some("pw-of-the-admin".into());
    App::build(config).await.unwrap()
}

#[tokio::test]
async fn rotates_every_credential_and_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = build(dir.path()).await;
    let old = app.state.credential_key.clone();
    let mut ids = Vec::new();
    let mut tx = app.state.db.begin().await.unwrap();
    let profile = auth_profiles::insert(&mut tx, "p", "redfish")
        .await
        .unwrap();
    for pw in ["first-secret", "second-secret"] {
        let id = auth_profiles::insert_credential(&mut tx, profile, "root")
            .await
            .unwrap();
        auth_profiles::set_secret(&mut tx, id, sealing::seal(&old, id, pw).unwrap())
            .await
            .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    app.state.db.close().await;
    drop(app);

    let new_hex = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mojo-server"))
        .arg("rotate-credential-key")
        .env("MOJO_DATA_DIR", dir.path())
        .env("MOJO_NEW_CREDENTIAL_KEY", new_hex)
        .env_remove("MOJO_CREDENTIAL_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("re-encrypted 2 credentials"), "{stdout}");
    let key_file = std::fs::read_to_string(dir.path().join("credential_key")).unwrap();
    assert_eq!(key_file.trim(), new_hex);

    // The next start reads the new key, the check value matches, every password opens.
    let app = build(dir.path()).await;
    let new = CredentialKey::parse(new_hex).unwrap();
    assert_eq!(app.state.credential_key.0, new.0);
    let creds = auth_profiles::credentials(&app.state.db, profile)
        .await
        .unwrap();
    let opened: Vec<String> = creds
        .iter()
        .map(|c| sealing::open(&new, c.id, &c.secret).unwrap())
        .collect();
    assert_eq!(opened, ["first-secret", "second-secret"]);
    assert!(sealing::open(&old, creds[0].id, &creds[0].secret).is_err());
}
