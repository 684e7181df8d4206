//! Runs `examples/walkthrough.sh` (the guide's end-to-end walkthrough with curl and jq) against
//! the built binary, on SQLite and on a fresh PostgreSQL database. Lab blocks 127.77.98.x and
//! 127.77.99.x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

fn run(net: &str, database_url: Option<&str>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/walkthrough.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .env("MOJO_BIN", env!("CARGO_BIN_EXE_mojo-server"))
        .env("WALK_NET", net)
        .env_remove("DATABASE_URL");
    if let Some(u) = database_url {
        cmd.env("DATABASE_URL", u);
    }
    let out = cmd.output().expect("run walkthrough.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walkthrough failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("walkthrough OK"), "{stdout}");
}

#[test]
fn walkthrough_sqlite() {
    run("127.77.98", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_postgres() {
    use sqlx::Connection;
    let name = format!("mojo_t_walk_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&format!("{}/postgres", common::pg_base()))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", common::pg_base());
    tokio::task::spawn_blocking(move || run("127.77.99", Some(&url)))
        .await
        .unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}
