//! Runs `examples/ansible/walkthrough.yml` (ansible-core pinned in
//! tests/python/ansible-requirements.txt) against a test server and a lab of 3 Dell BMCs, on
//! SQLite and on PostgreSQL. Labs: 127.77.3.1-3 and 127.77.4.1-3, port 9443.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;

use std::path::{Path, PathBuf};

use common::Backend;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    let venv = repo().join("target/pyvenv-ansible");
    let out = std::process::Command::new("bash")
        .arg(repo().join("tests/python/setup.sh"))
        .arg(&venv)
        .arg("ansible")
        .output()
        .expect("run tests/python/setup.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    venv
}

async fn playbook(backend: Backend, net: &str) {
    let venv = venv();
    let base = format!("{net}.1");
    let lab_ = tokio::task::spawn_blocking(move || {
        lab::Lab::start_on("start", 3, &base, 9443, &["--persona", "dell"]).unwrap()
    })
    .await
    .unwrap();
    let app = common::TestApp::builder(backend).tls(true).spawn().await;
    let vars = [
        format!(
            "ansible_python_interpreter={}",
            venv.join("bin/python").display()
        ),
        format!("mojohost={}", app.base),
        "username=admin".to_string(),
        format!("password={}", common::ADMIN_PASSWORD),
        format!("ip_from={net}.1"),
        format!("ip_to={net}.254"),
        "bmc_port=9443".to_string(),
        "bmc_user=root".to_string(),
        "bmc_password=calvin".to_string(),
    ];
    let mut cmd = tokio::process::Command::new(venv.join("bin/ansible-playbook"));
    cmd.args(["-i", "localhost,", "-c", "local"])
        .arg(repo().join("examples/ansible/walkthrough.yml"))
        .env(
            "ANSIBLE_LOCAL_TEMP",
            app.data_dir.path().join("ansible-tmp"),
        )
        .env("NO_PROXY", "127.0.0.1");
    for v in &vars {
        cmd.arg("-e").arg(v);
    }
    let out = cmd.output().await.expect("run ansible-playbook");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{text}");
    assert!(
        out.status.success(),
        "playbook failed ({backend:?}):\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("holds 3 servers"), "{text}");
    app.finish().await;
    drop(lab_);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_walkthrough_sqlite() {
    playbook(Backend::Sqlite, "127.77.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_walkthrough_postgres() {
    playbook(Backend::Postgres, "127.77.4").await;
}
