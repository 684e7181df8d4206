//! The `mojo-server` binary as an operator runs it: first start over HTTPS with generated keys,
//! the guide's Authenticate block with curl, JSON logs without secrets, clean SIGTERM, and
//! one-line start-up errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server(data_dir: &Path, port: u16, envs: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mojo-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MOJO_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOJO_DATA_DIR", data_dir)
        .env("MOJO_DISCOVERY_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("MOJO_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start mojo-server")
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ok = Command::new("curl")
            .args(["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("https://127.0.0.1:{port}/healthz"))
            .output()
            .map(|o| o.stdout == b"200")
            .unwrap_or(false);
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("server did not become ready");
}

fn sh(script: &str, envs: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .envs(envs.iter().copied())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stop(mut child: Child) -> (i32, String) {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    logs.push_str(&out);
    (status.code().unwrap_or(-1), logs)
}

#[test]
fn first_start_https_guide_authenticate_json_logs_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = server(dir.path(), port, &[]);
    wait_ready(port);
    let password_file = dir.path().join("initial_admin_password");
    let password = std::fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(password.len() >= 20);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&password_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "password file must be private");
    }
    // The guide's block, verbatim but for the host and credentials.
    let host = format!("https://127.0.0.1:{port}");
    let out = sh(
        r#"export TOKEN=$(curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -d "{\"username\": \"admin\", \"password\": \"${PW}\"}" \
    ${MOJOHOST}/api/token/ | jq -r '.access')

# Verify authentication
curl -s -k -H "Authorization: Bearer ${TOKEN}" \
    ${MOJOHOST}/api/users/me/ | jq '.username'
echo "TOKEN=${TOKEN}""#,
        &[("MOJOHOST", &host), ("PW", &password)],
    );
    assert!(out.starts_with("\"admin\"\n"), "{out}");
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("TOKEN="))
        .unwrap()
        .to_string();
    // A failed login is logged, with the user name but without the password.
    sh(
        r#"curl -s -k -X POST -d username=admin -d password=not-the-password-xyz ${MOJOHOST}/api/token/ >/dev/null"#,
        &[("MOJOHOST", &host)],
    );

    let (code, logs) = stop(child);
    assert_eq!(code, 0, "graceful exit: {logs}");
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    let secret = std::fs::read_to_string(dir.path().join("secret_key")).unwrap();
    let cred_key = std::fs::read_to_string(dir.path().join("credential_key")).unwrap();
    for needle in [
        password.as_str(),
        secret.trim(),
        cred_key.trim(),
        token.as_str(),
        "not-the-password-xyz",
    ] {
        assert!(!logs.contains(needle), "a secret leaked into the logs");
    }
    assert!(
        logs.contains("initial_admin_password"),
        "the log names the password file"
    );
    assert!(
        logs.contains("x-request-id") || logs.contains("request_id"),
        "request ids in logs"
    );

    // Second start reuses keys and certificate; the admin password file is not rewritten.
    let cert_before = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
    let child = server(dir.path(), port, &[]);
    wait_ready(port);
    let (code, _) = stop(child);
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read(dir.path().join("tls/cert.pem")).unwrap(),
        cert_before
    );
    assert_eq!(
        std::fs::read_to_string(&password_file).unwrap().trim(),
        password
    );
}

fn start_error(envs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mojo-server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MOJO_DATA_DIR", dir.path())
        .env("MOJO_LISTEN", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_settings_stop_startup_with_one_clear_line() {
    let e = start_error(&[("MOJO_TLS", "maybe")]);
    assert!(e.contains("MOJO_TLS") || e.contains("--tls"), "{e}");
    let e = start_error(&[("MOJO_MAX_BODY", "ten")]);
    assert!(e.contains("invalid size"), "{e}");
    let e = start_error(&[(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )]);
    assert!(e.contains("MOJO_SECRET_KEY"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    let e = start_error(&[("MOJO_TLS_CERT", "/nonexistent.pem")]);
    assert!(e.contains("MOJO_TLS_CERT and MOJO_TLS_KEY"), "{e}");
}
