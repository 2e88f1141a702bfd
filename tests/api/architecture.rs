//! The layers of `src/`, read from the code's own imports: no file depends on another that
//! depends back on it (no cycle, however long), no import points up the layer order, HTTP is
//! known only at the edge, and no file is too big to read in one sitting. The rules and the
//! picture are in `docs/development.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of each top-level module, lowest first: a file may use its own layer's module
/// and any lower layer, never a higher one nor a sibling module of the same layer.
const LAYERS: &[&[&str]] = &[
    &["domain", "clock"],
    &["error", "secrets"],
    &["config"],
    &["db", "auth"],
    &["webhooks"],
    &["service"],
    &["metrics"],
    &["telemetry"],
    &["api", "worker"],
    &["startup"],
    &["main"],
];

/// The only places that may speak HTTP (actix-web).
const HTTP_EDGE: &[&str] = &["api", "startup", "telemetry", "main"];

/// Lines of code before a file's tests (comments and docs included) above which it should be
/// split.
const MAX_LINES: usize = 620;

/// A source file as a module: its path in the crate (`["service", "store", "save"]`), whether
/// it is a `mod.rs`, and its code without tests or comments.
struct Module {
    file: PathBuf,
    path: Vec<String>,
    code: String,
    lines: usize,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/main.rs` is
/// the binary, `main`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Test files (`tests.rs`, `*_tests.rs`) are the tests of their parent module, not code.
fn is_test_file(file: &Path) -> bool {
    let name = file.file_stem().unwrap().to_string_lossy();
    name == "tests" || name.ends_with("_tests")
}

fn modules() -> Vec<Module> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| !is_test_file(f))
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            // Everything from the first top-level `#[cfg(test)]` on is the file's tests.
            let body: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("#[cfg(test)]"))
                .collect();
            let code = body
                .iter()
                .filter(|l| !l.trim_start().starts_with("//"))
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            Module {
                path: module_path(&file),
                lines: body.len(),
                file,
                code,
            }
        })
        .collect()
}

/// The `use` trees of a file, expanded to full paths: `use a::{b, c::{d, self}};` gives
/// `a::b`, `a::c::d` and `a::c`. Aliases (`as x`) are dropped; `*` stays as a segment.
fn use_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let after = &rest[at..];
        let end = after.find(';').unwrap_or(after.len());
        let tree: String = after[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let tree = tree
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ");
        let tree = tree.trim_start_matches("pub ").trim_start_matches("use ");
        let tree = without_aliases(tree).replace(' ', "");
        expand("", &tree, &mut out);
        rest = &after[end.min(after.len())..];
    }
    out
}

/// The next `use` item at the start of a line (after any `pub`).
fn find_use(code: &str) -> Option<usize> {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let t = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ");
        if t.starts_with("use ") {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

/// `a as b` is `a`.
fn without_aliases(tree: &str) -> String {
    let mut out = Vec::new();
    let mut words = tree.split(' ').peekable();
    while let Some(w) = words.next() {
        if w == "as" {
            // Drop the alias, keep what follows it (`,` or `}`).
            if let Some(alias) = words.next() {
                out.push(alias.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            }
        } else {
            out.push(w);
        }
    }
    out.concat()
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let join = |p: &str, s: &str| {
        if p.is_empty() {
            s.to_string()
        } else if s == "self" {
            p.to_string()
        } else {
            format!("{p}::{s}")
        }
    };
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
    } else if !tree.is_empty() {
        out.push(join(prefix, tree));
    }
}

/// Paths written out in the code: `crate::a::b`, `super::c`, `self::d`, `signoff::e`.
fn inline_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for root in ["crate::", "super::", "self::", "signoff::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(root) {
            let at = from + i;
            from = at + root.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            // `super::{a, b}` and `super::*` are use trees, read by `use_paths`.
            if !path.ends_with("::") {
                out.push(path);
            }
        }
    }
    out
}

/// The absolute segments (below the crate) a path names, seen from module `here`.
fn absolute(here: &[String], is_dir_module: bool, path: &str) -> Option<Vec<String>> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segs.first()? {
        &"crate" | &"signoff" => {
            segs.remove(0);
            vec![]
        }
        &"self" => {
            segs.remove(0);
            here.to_vec()
        }
        &"super" => {
            // `super` of `a::b` (in a/b.rs or a/b/mod.rs) is `a`.
            let mut b = here.to_vec();
            while segs.first() == Some(&"super") {
                segs.remove(0);
                b.pop();
            }
            b
        }
        _ => return None,
    };
    let _ = is_dir_module;
    base.extend(segs.into_iter().map(str::to_string));
    Some(base)
}

/// The file a path lands in: the longest prefix of its segments that is a module.
fn target<'a>(by_path: &'a BTreeMap<Vec<String>, usize>, segs: &[String]) -> Option<&'a usize> {
    (0..=segs.len())
        .rev()
        .find_map(|n| by_path.get(&segs[..n].to_vec()))
}

/// Every file each file depends on, by index.
fn graph(mods: &[Module]) -> Vec<BTreeSet<usize>> {
    let by_path: BTreeMap<Vec<String>, usize> = mods
        .iter()
        .enumerate()
        .filter(|(_, m)| m.path != ["main"])
        .map(|(i, m)| (m.path.clone(), i))
        .collect();
    mods.iter()
        .enumerate()
        .map(|(i, m)| {
            let dir_module = m.file.ends_with("mod.rs");
            let here: Vec<String> = if m.path == ["main"] {
                vec![]
            } else {
                m.path.clone()
            };
            let mut paths = use_paths(&m.code);
            paths.extend(inline_paths(&m.code));
            paths
                .iter()
                .filter_map(|p| {
                    absolute(&here, dir_module, p).or_else(|| {
                        // A path from a child module: `use child::item` in a `mod.rs`.
                        let mut segs = here.clone();
                        segs.extend(p.split("::").map(str::to_string));
                        by_path
                            .contains_key(&segs[..here.len() + 1])
                            .then_some(segs)
                    })
                })
                .filter(|segs| !segs.is_empty())
                .filter_map(|segs| target(&by_path, &segs).copied())
                .filter(|t| *t != i)
                .collect()
        })
        .collect()
}

fn layer_of(m: &Module) -> Option<(usize, &str)> {
    let top = m.path.first().map(String::as_str).unwrap_or("lib");
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .map(|rank| (rank, top))
}

fn name(m: &Module) -> String {
    m.file
        .strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .to_string()
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in t.edges[v].iter() {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                t.out.push(scc);
            }
        }
    }
    let n = edges.len();
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: vec![],
        next: 0,
        out: vec![],
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_file_depends_on_a_file_that_depends_back_on_it() {
    let mods = modules();
    let edges = graph(&mods);
    let found: Vec<String> = cycles(&edges)
        .into_iter()
        .map(|scc| {
            let mut names: Vec<String> = scc.iter().map(|&i| name(&mods[i])).collect();
            names.sort();
            names.join(" <-> ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn no_import_points_up_the_layers_or_across_to_a_sibling() {
    let mods = modules();
    let edges = graph(&mods);
    let mut wrong = Vec::new();
    for (i, m) in mods.iter().enumerate() {
        let Some((rank, top)) = layer_of(m) else {
            continue;
        };
        for &j in &edges[i] {
            let Some((to_rank, to_top)) = layer_of(&mods[j]) else {
                continue;
            };
            if to_rank > rank || (to_rank == rank && to_top != top) {
                wrong.push(format!("{} -> {}", name(m), name(&mods[j])));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn only_the_edge_speaks_http() {
    let wrong: Vec<String> = modules()
        .iter()
        .filter(|m| {
            let top = m.path.first().map(String::as_str).unwrap_or("lib");
            !HTTP_EDGE.contains(&top) && m.code.contains("actix_web")
        })
        .map(name)
        .collect();
    assert!(wrong.is_empty(), "actix_web used below the edge: {wrong:?}");
}

#[test]
fn no_source_file_is_too_long_to_read_in_one_sitting() {
    let long: Vec<String> = modules()
        .iter()
        .filter(|m| m.lines > MAX_LINES)
        .map(|m| format!("{} ({} lines before its tests)", name(m), m.lines))
        .collect();
    assert!(long.is_empty(), "files to split:\n{}", long.join("\n"));
}

#[test]
fn the_checker_reads_use_trees_and_paths() {
    let mut got = use_paths("use crate::a::{b, c::{d, self}};\npub use super::e as f;\n");
    got.sort();
    assert_eq!(
        got,
        ["crate::a::b", "crate::a::c", "crate::a::c::d", "super::e"]
    );
    assert_eq!(
        absolute(&["x".into(), "y".into()], false, "super::z::w"),
        Some(vec!["x".into(), "z".into(), "w".into()])
    );
    assert_eq!(
        cycles(&[[1].into(), [2].into(), [0].into(), [].into()]),
        vec![vec![2, 1, 0]]
    );
}
