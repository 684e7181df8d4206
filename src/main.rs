//! The `mojo-server` binary: parse the configuration, set up logging, run a subcommand.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use mojo_server::app::{self, App};
use mojo_server::config::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: database rows are allocated on the SQLite driver's worker
/// threads and freed on the runtime's, a pattern glibc's per-thread arenas handle slowly and with
/// a resident size that keeps growing (403 MB vs 150 MB target in bench/inventory.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Standard error, with every control character of a log line escaped except the newline
/// that ends it: a value (a user name, a BMC's answer) cannot forge a log line or send
/// terminal escapes, whatever way it was logged.
struct EscapedStderr;

impl std::io::Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (text.as_ref(), ""),
        };
        let mut out = String::with_capacity(buf.len() + 8);
        for c in body.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        out.push_str(end);
        std::io::stderr().write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MOJO_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| EscapedStderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal(token: tokio_util::sync::CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(config).await?;
            let token = app.state.shutdown.clone();
            let signals = tokio::spawn(shutdown_signal(token));
            let result = app.run().await;
            signals.abort();
            result
        }
        Command::Migrate => {
            config.validate().map_err(anyhow::Error::msg)?;
            app::open_database(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Createsuperuser { username, email } => {
            config.validate().map_err(anyhow::Error::msg)?;
            let db = app::open_database(&config).await?;
            let password = match mojo_server::config::secret_from_env("MOJO_NEW_PASSWORD")
                .map_err(anyhow::Error::msg)?
            {
                Some(p) => p,
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                anyhow::bail!("no password given (set MOJO_NEW_PASSWORD or pipe it on stdin)");
            }
            let id = app::create_superuser(&db, &username, &email, &password).await?;
            println!("created superuser {username} (id {id})");
            Ok(())
        }
        Command::Openapi { format } => {
            let doc = mojo_server::http::openapi::document(&mojo_server::http::api().ops);
            match format.as_str() {
                "json" => println!("{}", mojo_server::http::openapi::to_json(&doc)),
                "yaml" => print!("{}", mojo_server::http::openapi::to_yaml(&doc)),
                other => anyhow::bail!("unknown format {other} (yaml or json)"),
            }
            Ok(())
        }
        Command::RotateCredentialKey => rotate_credential_key(&config).await,
    }
}

/// Re-encrypts every stored BMC credential under MOJO_NEW_CREDENTIAL_KEY[_FILE] in one
/// transaction. A key generated into the data dir is replaced there too; a key given by
/// environment must be changed by the operator before the next start.
async fn rotate_credential_key(config: &mojo_server::config::Config) -> anyhow::Result<()> {
    use mojo_server::{config::secret_from_env, keys};
    config.validate().map_err(anyhow::Error::msg)?;
    let db = app::open_database(config).await?;
    let (_, old) = keys::load(config).map_err(anyhow::Error::msg)?;
    keys::verify_credential_key(&db, &old)
        .await
        .map_err(anyhow::Error::msg)?;
    let new = secret_from_env("MOJO_NEW_CREDENTIAL_KEY")
        .map_err(anyhow::Error::msg)?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "set MOJO_NEW_CREDENTIAL_KEY (or MOJO_NEW_CREDENTIAL_KEY_FILE) to the new key"
            )
        })?;
    let new = keys::CredentialKey::parse(&new).map_err(|e| {
        anyhow::anyhow!(e
            .to_string()
            .replace("MOJO_CREDENTIAL_KEY", "MOJO_NEW_CREDENTIAL_KEY"))
    })?;
    let n = mojo_server::discovery::sealing::rotate(&db, &old, &new)
        .await
        .map_err(anyhow::Error::msg)?;
    db.close().await;
    let from_env = config.injected.credential_key.is_some()
        || secret_from_env("MOJO_CREDENTIAL_KEY")
            .map_err(anyhow::Error::msg)?
            .is_some();
    if from_env {
        println!("re-encrypted {n} credentials; set MOJO_CREDENTIAL_KEY to the new key before the next start");
    } else {
        let path = config.data_dir.join("credential_key");
        let tmp = config.data_dir.join("credential_key.new");
        let _ = std::fs::remove_file(&tmp);
        keys::write_private(&tmp, &hex::encode(new.0))?;
        std::fs::rename(&tmp, &path)?;
        println!(
            "re-encrypted {n} credentials; the new key is in {}",
            path.display()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mojo-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mojo-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
