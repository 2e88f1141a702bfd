//! Keeps the docs true: the `sh` blocks of docs/tutorial.md and of the README's worked example
//! run with bash against a live application, and the README's configuration table lists exactly
//! the settings src/config.rs knows.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// Longest a document's commands may take; they need a few seconds.
const DEADLINE: Duration = Duration::from_secs(180);

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The ```` ```sh ```` blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "a ```sh block is not closed");
    blocks
}

/// The text under the `## ` heading that starts with `title`, up to the next `## ` heading.
fn section<'a>(markdown: &'a str, title: &str) -> &'a str {
    let start = markdown
        .find(&format!("\n## {title}"))
        .unwrap_or_else(|| panic!("no section {title:?}"))
        + 1;
    let rest = &markdown[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// Runs the blocks in one bash (so variables carry from block to block) with `set -euo
/// pipefail`, against the app at `base`. Panics naming the block that failed, with its output.
fn run_blocks(base: &str, token: &str, name: &str, blocks: &[String]) {
    assert!(!blocks.is_empty(), "{name}: no sh blocks");
    let dir = std::env::temp_dir().join(format!("signoff-docs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut script = String::from("set -euo pipefail\nexec 2>&1\n");
    for (i, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '### block {}'\n{block}", i + 1));
    }
    script.push_str("echo '### done'\n");
    let script_path = dir.join("script.sh");
    std::fs::write(&script_path, script).unwrap();
    let out_path = dir.join("output.txt");
    // coreutils' timeout ends a command that hangs (a server that never answers, say).
    let status = Command::new("timeout")
        .arg(DEADLINE.as_secs().to_string())
        .arg("bash")
        .arg(&script_path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BASE", base)
        .env("TOKEN", token)
        .env("TMPDIR", &dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .status()
        .expect("timeout and bash run");
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if status.success() && output.contains("### done") {
        return;
    }
    let failed_in = output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("### block "))
        .unwrap_or("?");
    let lines: Vec<&str> = output.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    let why = if status.code() == Some(124) {
        format!("was still running after {DEADLINE:?}")
    } else {
        format!("failed ({status})")
    };
    panic!(
        "{name}: sh block {failed_in} of {} {why}; its last output:\n{tail}",
        blocks.len()
    );
}

/// Runs the blocks on the blocking pool, so the app keeps serving on this test's runtime.
async fn run_doc(app: &TestApp, name: &'static str, blocks: Vec<String>) {
    let (base, token) = (app.address.clone(), app.token.clone());
    tokio::task::spawn_blocking(move || run_blocks(&base, &token, name, &blocks))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
}

/// The state of the one approval on `ticket`.
async fn state_on_ticket(app: &TestApp, ticket: &str) -> Value {
    let list = app.get(&format!("/v1/approvals?ticket_id={ticket}")).await;
    assert_eq!(list.status.as_u16(), 200, "{}", list.text);
    let items = list.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "approvals on {ticket}: {}", list.text);
    items[0]["state"].clone()
}

#[tokio::test]
async fn the_tutorial_runs_as_written() {
    let app = spawn_app().await;
    let blocks = sh_blocks(&read("docs/tutorial.md"));
    run_doc(&app, "docs/tutorial.md", blocks).await;
    // The process approval decided by two answers, the one decided through a link, and the
    // one a substitute answered.
    for ticket in ["T-1002", "T-1004", "T-1005"] {
        assert_eq!(state_on_ticket(&app, ticket).await, "approved", "{ticket}");
    }
}

#[tokio::test]
async fn the_readme_example_runs_as_written() {
    let app = spawn_app().await;
    let readme = read("README.md");
    let mut blocks = sh_blocks(section(&readme, "A worked example"));
    blocks.extend(sh_blocks(section(&readme, "Automation")));
    run_doc(&app, "README.md", blocks).await;
    assert_eq!(state_on_ticket(&app, "T-1001").await, "approved");
    // The rule started the iTop approval, and its manager level is done.
    assert_eq!(state_on_ticket(&app, "T-2001").await, "pending");
    let ticket = app.get("/v1/tickets/T-2001").await;
    assert_eq!(
        ticket.body["approval"]["summary"], "Awaiting approval from Katherine Johnson",
        "{}",
        ticket.text
    );
}

/// The names `src/config.rs` accepts: its `KNOWN` list, plus the two variables it reads
/// without the prefix.
fn known_settings() -> BTreeSet<String> {
    let config = read("src/config.rs");
    let start = config
        .find("const KNOWN: &[&str] = &[")
        .expect("src/config.rs lists its settings in KNOWN");
    let list = &config[start..];
    let list = &list[..list.find("];").expect("KNOWN ends")];
    let mut names: BTreeSet<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    names.extend(["DATABASE_URL".to_string(), "RUST_LOG".to_string()]);
    names
}

#[test]
fn the_readme_lists_every_setting_and_no_other() {
    let readme = read("README.md");
    let table: BTreeSet<String> = section(&readme, "Configuration")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let known = known_settings();
    let missing: Vec<&String> = known.difference(&table).collect();
    let unknown: Vec<&String> = table.difference(&known).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "README.md's configuration table: add {missing:?}, remove {unknown:?}"
    );
}

#[test]
fn the_readme_is_read_in_one_sitting() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move the rest to docs/"
    );
    for command in ["make run", "make test"] {
        assert!(
            readme.lines().any(|l| l.trim() == command),
            "README.md lost the line {command:?}"
        );
    }
}

/// Pages of the manual written on other branches; while one is absent, links to it are not
/// checked. Once they are all merged this list can be emptied.
const PAGES_TO_COME: &[&str] = &[];

/// GitHub's anchors for a Markdown text's headings (outside code blocks).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            let title = line.trim_start_matches('#').trim().to_lowercase();
            let slug: String = title
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            out.insert(slug);
        }
    }
    out
}

#[test]
fn links_in_the_docs_lead_somewhere() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec!["README.md".to_string()];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".md") {
            pages.push(format!("docs/{name}"));
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(page);
        let dir = std::path::Path::new(page).parent().unwrap();
        for piece in text.split("](").skip(1) {
            let Some(target) = piece.split(')').next() else {
                continue;
            };
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                std::path::PathBuf::from(page)
            } else {
                dir.join(path)
            };
            // `docs/../tests/x` → `tests/x`, so it compares with PAGES_TO_COME.
            let mut parts: Vec<&str> = Vec::new();
            for c in file.iter().filter_map(|c| c.to_str()) {
                match c {
                    "." => {}
                    ".." => {
                        parts.pop();
                    }
                    other => parts.push(other),
                }
            }
            let file = parts.join("/");
            if !root.join(&file).exists() {
                if !PAGES_TO_COME.contains(&file.as_str()) {
                    broken.push(format!("{page}: {target} (no {file})"));
                }
                continue;
            }
            if !anchor.is_empty()
                && file.ends_with(".md")
                && !anchors(&read(&file)).contains(anchor)
            {
                broken.push(format!("{page}: {target} (no heading #{anchor} in {file})"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
