//! The layering of the crate's top-level modules, checked from the source.
//!
//! Reads every file of each top-level module that `lib.rs` declares, takes
//! the other top-level modules it names (`crate::x…`, `crate::{x, …}`, and
//! `super::` paths that climb out of the module), and fails if that graph
//! has a cycle, naming the cycle and where each of its edges is written.
//! Comment lines do not count: a doc link is no dependency.
//!
//! See the graph: `cargo test -p haproxy-nomad-connector --lib layering --
//! --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → the modules it uses → where it first does (`file:line`).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules `lib.rs` declares, but those only tests build.
fn top_level(lib: &str) -> Vec<String> {
    let mut modules = Vec::new();
    let mut test_only = false;
    for line in lib.lines().map(str::trim) {
        if line == "#[cfg(test)]" {
            test_only = true;
            continue;
        }
        let declaration = line.strip_prefix("pub ").unwrap_or(line);
        if let Some(name) = declaration
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
            && !test_only
        {
            modules.push(name.to_string());
        }
        test_only = false;
    }
    modules
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files of a top-level module: `<name>.rs` and everything under `<name>/`.
fn module_files(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = src.join(format!("{name}.rs"));
    if single.is_file() {
        files.push(single);
    }
    rust_files(&src.join(name), &mut files);
    files.sort();
    files
}

/// How deep a file's module sits below the crate root, from its path:
/// `plan/mod.rs` and `plan.rs` 1, `plan/diff/domains.rs` 3.
fn file_depth(src: &Path, file: &Path) -> usize {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let parts = relative.components().count();
    if relative.ends_with("mod.rs") {
        parts - 1
    } else {
        parts
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> &str {
    let end = text.find(|c: char| !is_ident(c)).unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of each item of a `{…}` group (`text` starts
/// after the `{`): `a, b::c, d::{e, f}` → `a`, `b`, `d`.
fn group_heads(text: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if c.is_whitespace() => {}
            _ if item_start && depth == 0 => {
                heads.push(ident(&text[at..]));
                item_start = false;
            }
            _ => item_start = false,
        }
    }
    heads
}

/// The code of a file without its comment lines, each line with its
/// number and how many inline modules (`mod tests {`) enclose it.
fn code_lines(text: &str) -> Vec<(usize, usize, &str)> {
    let mut lines = Vec::new();
    let mut inline: Vec<usize> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "}" && inline.last() == Some(&indent) {
            inline.pop();
        }
        lines.push((number + 1, inline.len(), line));
        let declaration = trimmed
            .strip_prefix("pub(crate) ")
            .or_else(|| trimmed.strip_prefix("pub "))
            .unwrap_or(trimmed);
        if declaration.starts_with("mod ") && declaration.ends_with('{') {
            inline.push(indent);
        }
    }
    lines
}

/// The top-level modules named in `code` (a file's text without comment
/// lines) of a module `depth` below the crate root: with their line numbers.
fn references(text: &str, depth: usize) -> Vec<(String, usize)> {
    let lines = code_lines(text);
    let code: String = lines.iter().map(|(_, _, l)| format!("{l}\n")).collect();
    let line_of = |offset: usize| lines[code[..offset].matches('\n').count()];
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(is_ident) {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        let (number, _, _) = line_of(at);
        match rest.strip_prefix('{') {
            Some(group) => {
                for head in group_heads(group) {
                    found.push((head.to_string(), number));
                }
            }
            None => found.push((ident(rest).to_string(), number)),
        }
    }
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with(|c: char| is_ident(c) || c == ':') {
            continue;
        }
        let mut rest = &code[at..];
        let mut climbs = 0;
        while let Some(next) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = next;
        }
        let (number, inline, _) = line_of(at);
        if climbs == depth + inline {
            found.push((ident(rest).to_string(), number));
        }
    }
    found
}

/// The graph of the crate's top-level modules.
fn graph(src: &Path) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let modules = top_level(&lib);
    let mut graph = Graph::new();
    for module in &modules {
        let uses = graph.entry(module.clone()).or_default();
        for file in module_files(src, module) {
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            let shown = file
                .strip_prefix(src)
                .unwrap_or(&file)
                .display()
                .to_string();
            for (used, line) in references(&text, file_depth(src, &file)) {
                if &used != module && modules.contains(&used) {
                    uses.entry(used)
                        .or_insert_with(|| format!("{shown}:{line}"));
                }
            }
        }
    }
    graph
}

/// A cycle of the graph, as the modules along it (the first repeated at
/// the end), if it has one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for used in graph.get(module).into_iter().flat_map(|u| u.keys()) {
            if let Some(cycle) = visit(graph, used, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

/// The graph, one module per line: `plan → escape, nomad, vocab`.
fn show(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(module, uses)| {
            let uses: Vec<&str> = uses.keys().map(String::as_str).collect();
            format!("{module} → {}\n", uses.join(", "))
        })
        .collect()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = graph(&src());
    print!("{}", show(&graph));
    assert!(graph.len() > 5, "the scanner found no modules: {graph:?}");
    if let Some(cycle) = cycle(&graph) {
        let edges: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                format!(
                    "  {} → {} ({})",
                    pair[0], pair[1], graph[&pair[0]][&pair[1]]
                )
            })
            .collect();
        panic!(
            "the top-level modules form a cycle: {}\n{}",
            cycle.join(" → "),
            edges.join("\n")
        );
    }
}

#[test]
fn the_vocabulary_imports_nothing_from_the_crate() {
    let graph = graph(&src());
    assert_eq!(graph["vocab"], BTreeMap::new(), "vocab must stay a leaf");
}

#[test]
fn the_scanner_finds_what_it_must() {
    let text = "\
//! A doc link to [`crate::daemon`] is no dependency.
use crate::plan::{Desired, diff};
use crate::{escape, vocab::names};
use super::sibling;
pub(crate) fn f() -> crate::nomad::Instance {
    $crate::metrics::x();
    super::super::haproxy::Driver
}
#[cfg(test)]
mod tests {
    use super::super::super::mapping::Engine;
    use super::*;
}
";
    let found: Vec<(String, usize)> = references(text, 2);
    let names: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        names,
        [
            "plan", "escape", "vocab", "nomad", "metrics", "haproxy", "mapping"
        ]
    );
    assert_eq!(found[3], ("nomad".to_string(), 5));
    assert_eq!(
        top_level("pub mod a;\nmod b;\n#[cfg(test)]\nmod c;\npub mod d {}\n"),
        ["a", "b"]
    );
}

#[test]
fn a_back_edge_is_a_cycle() {
    let mut graph: Graph = [
        ("nomad", vec![]),
        ("plan", vec!["nomad", "vocab"]),
        ("haproxy", vec!["plan", "vocab"]),
        ("vocab", vec![]),
    ]
    .into_iter()
    .map(|(m, uses)| {
        let uses = uses.into_iter().map(|u| (u.to_string(), String::new()));
        (m.to_string(), uses.collect())
    })
    .collect();
    assert_eq!(cycle(&graph), None);
    graph
        .get_mut("vocab")
        .unwrap()
        .insert("haproxy".into(), String::new());
    assert_eq!(
        cycle(&graph).unwrap(),
        ["haproxy", "plan", "vocab", "haproxy"].map(String::from)
    );
}
