//! The committed schema (`openapi/schema.yaml`) must be exactly what the code serves, so that
//! reviewers see API changes in diffs and client generators can work from the repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use mojo_server::http::{api, openapi};

const FIX: &str = "run `cargo run -- openapi > openapi/schema.yaml` and commit the result";

#[test]
fn committed_schema_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/schema.yaml");
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {}: {e}; {FIX}", path.display()),
    };
    let generated = openapi::to_yaml(&openapi::document(&api().ops));
    if committed == generated {
        return;
    }
    let first_difference = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
    let line = |text: &str| {
        text.lines()
            .nth(first_difference)
            .unwrap_or("<end of file>")
            .to_string()
    };
    panic!(
        "openapi/schema.yaml is out of date with the code: {FIX}.\n\
         First difference at line {}:\n  committed: {}\n  generated: {}",
        first_difference + 1,
        line(&committed),
        line(&generated),
    );
}
