//! The layering rule, checked on the source: dependencies point down.
//!
//! - Only the web edge (`src/http/`) and the composition root (`src/app.rs`, `src/main.rs`)
//!   name `axum` or `crate::http`.
//! - `src/db/` never names `redfish`, and `src/redfish/` never names `db`.
//! - SQL is written only in `src/db/`.
//! - The top-level modules form no import cycle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments removed (line comments and doc comments), so prose may name
/// anything.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// (path relative to src, code) of every source file.
fn all() -> Vec<(String, String)> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    files.sort();
    files
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(src())
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            (rel, code_of(p))
        })
        .collect()
}

/// Whether `code` names the crate `name` as a path root (`name::`, `use name`, `name {`).
fn names_crate(code: &str, name: &str) -> bool {
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find(name) {
        let at = from + i;
        let end = at + name.len();
        let before_ok =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let after = &code[end..];
        let after_ok = after.starts_with("::") || after.starts_with(';') || after.starts_with(" {");
        if before_ok && after_ok {
            return true;
        }
        from = end;
    }
    false
}

/// The first path segment after every `crate::` (each item of a `crate::{a, b::c}` group).
fn crate_roots(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 || c != '{' {
                    item.push(c);
                }
            }
            out.insert(ident(&item));
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

fn top_module(rel: &str) -> Option<&str> {
    let first = rel.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then_some(name)
}

#[test]
fn only_the_web_edge_and_the_root_name_axum_or_http() {
    let mut offenders = Vec::new();
    for (rel, code) in all() {
        if rel.starts_with("http/") || rel == "app.rs" || rel == "main.rs" {
            continue;
        }
        if names_crate(&code, "axum") || code.contains("crate::http") {
            offenders.push(rel);
        }
    }
    assert!(offenders.is_empty(), "outside the web edge: {offenders:?}");
}

#[test]
fn storage_and_bmc_traffic_do_not_know_each_other() {
    for (rel, code) in all() {
        if rel.starts_with("db/") {
            assert!(!code.contains("crate::redfish"), "{rel} names redfish");
        }
        if rel.starts_with("redfish/") {
            assert!(!code.contains("crate::db"), "{rel} names the database");
        }
    }
}

#[test]
fn all_sql_is_in_db() {
    let mut offenders = Vec::new();
    for (rel, code) in all() {
        if !rel.starts_with("db/") && (code.contains("Sql::new") || code.contains("sqlx::query")) {
            offenders.push(rel);
        }
    }
    assert!(offenders.is_empty(), "SQL outside db/: {offenders:?}");
}

#[test]
fn top_level_modules_form_no_cycle() {
    let files = all();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(rel, _)| top_module(rel).map(str::to_string))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, code) in &files {
        let Some(from) = top_module(rel) else {
            continue;
        };
        let deps = edges.entry(from.to_string()).or_default();
        for to in crate_roots(code) {
            if to != from && modules.contains(&to) {
                deps.insert(to);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = stack.iter().position(|s| s == m) {
            panic!(
                "import cycle: {} -> {m}; edges: {edges:?}",
                stack[i..].join(" -> ")
            );
        }
        stack.push(m.to_string());
        for d in edges.get(m).into_iter().flatten() {
            visit(d, edges, stack, done);
        }
        stack.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        visit(m, &edges, &mut Vec::new(), &mut done);
    }
    // The layers the README names, checked as edges that must not exist.
    let forbidden = [
        ("db", "http"),
        ("db", "jobs"),
        ("db", "discovery"),
        ("db", "ctx"),
        ("jobs", "discovery"),
        ("jobs", "http"),
        ("ctx", "jobs"),
        ("redfish", "db"),
        ("redfish", "jobs"),
        ("discovery", "http"),
    ];
    for (from, to) in forbidden {
        assert!(
            !edges.get(from).is_some_and(|d| d.contains(to)),
            "{from} must not depend on {to}"
        );
    }
}
