//! The guide's "Client Libraries & SDK Generation", for real: the schema downloaded from a
//! running server with the guide's curl command, the guide's four `openapi-generator-cli
//! generate` commands (python, typescript-axios, go, java; openapi-generator-cli pinned in
//! tests/python/generators-requirements.txt, run on the machine's Java), no generator warning
//! about our operations or models, then `examples/python_client.py` with the generated
//! `mojo_client` against a lab (login, auth profile, scan range, scan, registration, servers
//! listed with search and paging) on SQLite and on PostgreSQL.
//!
//! Labs: 127.77.1.1-3 and 127.77.2.1-3, port 9443 (run under `flock /tmp/lab.lock`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::Backend;

/// Generator output lines that are not about our schema, each with why.
const KNOWN_WARNINGS: &[(&str, &str)] = &[
    (
        "Failed to get the schema name: null",
        "the python generator logs it for any document with a component, even a one-property one",
    ),
    (
        "Could not compute datatypeWithEnum from ",
        "fromFormProperty logs it for every array property of a form body whose items are not an \
         enum (the multipart `models` of uploads: DRF's ListField)",
    ),
    (
        "Switch (reserved word) cannot be used as model name. Renamed to ModelSwitch",
        "java: `Switch` is drf-spectacular's component name for a switch (the product's schema \
         has it); renaming it would rename the model in every other client",
    ),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    let venv = repo().join("target/pyvenv-generators");
    let out = Command::new("bash")
        .arg(repo().join("tests/python/setup.sh"))
        .arg(&venv)
        .arg("generators")
        .output()
        .expect("run tests/python/setup.sh");
    assert!(
        out.status.success(),
        "tests/python/setup.sh generators failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    venv
}

/// `bash -c script` in `dir` with the venv first on PATH; returns stdout+stderr.
fn sh(dir: &Path, venv: &Path, envs: &[(&str, &str)], script: &str) -> String {
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .envs(envs.iter().copied())
        .output()
        .expect("run bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "`{script}` failed:\n{text}");
    text
}

/// The warnings of one generator run that are about our schema.
fn our_warnings(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains("[WARN]") || l.contains(" ERROR "))
        .filter(|l| !KNOWN_WARNINGS.iter().any(|(k, _)| l.contains(k)))
        .map(str::to_string)
        .collect()
}

const GENERATE: &[(&str, &str)] = &[
    (
        "python",
        "openapi-generator-cli generate \\\n    -i mojo-openapi.yaml \\\n    -g python \\\n    -o ./mojo-python-client \\\n    --additional-properties=packageName=mojo_client",
    ),
    (
        "typescript-axios",
        "openapi-generator-cli generate \\\n    -i mojo-openapi.yaml \\\n    -g typescript-axios \\\n    -o ./mojo-ts-client",
    ),
    (
        "go",
        "openapi-generator-cli generate \\\n    -i mojo-openapi.yaml \\\n    -g go \\\n    -o ./mojo-go-client",
    ),
    (
        "java",
        "openapi-generator-cli generate \\\n    -i mojo-openapi.yaml \\\n    -g java \\\n    -o ./mojo-java-client",
    ),
];

async fn python_client(backend: Backend, venv: &Path, work: &Path, net: &str) {
    let base = format!("{net}.1");
    let lab_ = tokio::task::spawn_blocking(move || {
        lab::Lab::start_on("start", 3, &base, 9443, &["--persona", "dell"]).unwrap()
    })
    .await
    .unwrap();
    let app = common::TestApp::builder(backend).tls(true).spawn().await;
    let script = repo().join("examples/python_client.py");
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(&script)
        .args([
            app.base.as_str(),
            "admin",
            common::ADMIN_PASSWORD,
            &format!("{net}.1"),
            &format!("{net}.254"),
            "9443",
            "root",
            "calvin",
            "3",
        ])
        .env("PYTHONPATH", work.join("mojo-python-client"))
        .env("NO_PROXY", "127.0.0.1")
        .env("PYTHONWARNINGS", "ignore:Unverified HTTPS request")
        .output()
        .await
        .expect("run python_client.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{backend:?}: {text}");
    assert!(
        out.status.success(),
        "python_client.py ({backend:?}):\n{text}"
    );
    assert!(text.contains("python client OK: 3 servers"), "{text}");
    app.finish().await;
    drop(lab_);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guide_generators_and_the_generated_python_client() {
    let venv = venv();
    let work = tempfile::tempdir().unwrap();

    // The guide's download, against a running server.
    let app = common::TestApp::builder(Backend::Sqlite)
        .tls(true)
        .spawn()
        .await;
    let (dir, v, base, token) = (
        work.path().to_path_buf(),
        venv.clone(),
        app.base.clone(),
        app.token.clone(),
    );
    tokio::task::spawn_blocking(move || {
        sh(
            &dir,
            &v,
            &[("MOJOHOST", &base), ("TOKEN", &token)],
            "curl -s -k \\\n    -H \"Authorization: Bearer ${TOKEN}\" \\\n    ${MOJOHOST}/api/schema/ -o mojo-openapi.yaml",
        )
    })
    .await
    .unwrap();
    app.finish().await;
    let schema = std::fs::read_to_string(work.path().join("mojo-openapi.yaml")).unwrap();
    assert!(
        schema.starts_with("openapi: 3.0.3"),
        "{}",
        &schema[..80.min(schema.len())]
    );

    // The guide's four commands.
    let mut report = Vec::new();
    for (generator, command) in GENERATE {
        let (dir, v) = (work.path().to_path_buf(), venv.clone());
        let started = Instant::now();
        let log = tokio::task::spawn_blocking(move || sh(&dir, &v, &[], command))
            .await
            .unwrap();
        let warnings = our_warnings(&log);
        report.push(format!(
            "{generator}: {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        assert!(
            warnings.is_empty(),
            "{generator} warns about the schema:\n{}",
            warnings.join("\n")
        );
    }
    println!("generated: {}", report.join(", "));
    for dir in [
        "mojo-python-client/mojo_client",
        "mojo-ts-client",
        "mojo-go-client",
        "mojo-java-client",
    ] {
        assert!(work.path().join(dir).is_dir(), "{dir} not generated");
    }

    python_client(Backend::Sqlite, &venv, work.path(), "127.77.1").await;
    python_client(Backend::Postgres, &venv, work.path(), "127.77.2").await;
}
