//! The docs against the code: every config key they name parses in the
//! config types, every TOML snippet resolves, and every `haproxy.*` tag in
//! the tag reference is one the tag parsers know. Nothing here lists keys
//! or tags: the code is asked. (The CLI flags are checked against clap in
//! the binary's own tests, where its `Command` lives.)

use haproxy_nomad_connector::config::{Config, Resolved};
use haproxy_nomad_connector::mapping::tags::CheckTags;
use haproxy_nomad_connector::plan::tags::ServiceTags;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// Every user doc (docs/*.md but the generated fidelity table) and the README.
fn docs() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| !p.ends_with("fidelity.md"))
        .collect();
    files.push(repo().join("README.md"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a readable doc");
            let name = p.strip_prefix(repo()).unwrap_or(&p).display().to_string();
            (name, text)
        })
        .collect()
}

/// The inline code spans of a Markdown text (outside fenced blocks; a span
/// may run over a line break, never over a paragraph).
fn code_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut paragraph = String::new();
    let mut fenced = false;
    let mut flush = |paragraph: &mut String| {
        spans.extend(paragraph.split('`').skip(1).step_by(2).map(String::from));
        paragraph.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            flush(&mut paragraph);
            fenced = !fenced;
        } else if fenced {
            // A code block holds no spans.
        } else if line.trim().is_empty() || line.starts_with('|') || line.starts_with('#') {
            flush(&mut paragraph);
            paragraph.push_str(line);
            flush(&mut paragraph);
        } else {
            paragraph.push_str(line);
            paragraph.push(' ');
        }
    }
    flush(&mut paragraph);
    spans
}

/// The fenced blocks of one language.
fn fenced_blocks(text: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            Some(block) if trimmed.starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if trimmed.strip_prefix("```") == Some(language) => current = Some(String::new()),
            None => {}
        }
    }
    blocks
}

/// Whether the config types accept `key` in `[section]` (a value of the
/// wrong type is fine: only an unknown key is refused).
fn key_exists(section: &str, key: &str) -> bool {
    let text = format!("[{section}]\n{key} = 0\n");
    match Config::parse(&text) {
        Ok(_) => true,
        Err(e) => !e.contains("unknown field"),
    }
}

/// Whether `text` looks like a TOML table name (`mapping.limits`,
/// `mapping.settings.<check type>`).
fn is_table_name(text: &str) -> bool {
    text.contains('<') || text.split('.').all(is_identifier)
}

/// Whether the config has a table `[head]` (so `head.key` names a key).
fn is_section(head: &str) -> bool {
    is_table_name(head) && Config::parse(&format!("[{head}]\n")).is_ok()
}

/// `[section]` named in a heading (`` ## `[nomad]`: … ``), if any.
fn heading_section(line: &str) -> Option<String> {
    code_spans(line).into_iter().find_map(|span| {
        let inner = span.strip_prefix('[')?.strip_suffix(']')?;
        is_table_name(inner).then(|| inner.to_string())
    })
}

/// The keys named in a doc, with the section they are named under: the
/// key column of tables under a `` `[section]` `` heading, `` `[section] key` ``
/// and `` `section.key` `` spans.
fn named_keys(text: &str, dotted: bool) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut section: Option<String> = None;
    let mut key_column: Option<usize> = None;
    for line in text.lines() {
        if line.starts_with('#') {
            section = heading_section(line);
            key_column = None;
            continue;
        }
        let Some(row) = line.strip_prefix('|') else {
            key_column = None;
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(section) = &section else { continue };
        match key_column {
            None => {
                key_column = Some(
                    cells
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case("key"))
                        .unwrap_or(0),
                )
            }
            Some(_)
                if cells
                    .iter()
                    .all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) => {}
            Some(column) => {
                // `[mapping.settings.<check type>]` and `[mapping.plugins]`
                // take any key.
                if section.contains('<') || section == "mapping.plugins" {
                    continue;
                }
                for span in code_spans(cells.get(column).copied().unwrap_or("")) {
                    keys.push((section.clone(), span));
                }
            }
        }
    }
    for span in code_spans(text) {
        if let Some((head, key)) = span.strip_prefix('[').and_then(|s| s.split_once("] ")) {
            if is_table_name(head) && !head.contains('<') && is_identifier(key) {
                keys.push((head.to_string(), key.to_string()));
            }
        } else if dotted
            && let Some((head, key)) = span.rsplit_once('.')
            && is_section(head)
            && is_identifier(head.replace('.', "_").as_str())
            && is_identifier(key)
        {
            keys.push((head.to_string(), key.to_string()));
        }
    }
    keys
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[test]
fn every_config_key_in_the_docs_exists() {
    let mut checked = 0;
    let mut unknown = Vec::new();
    for (name, text) in docs() {
        // `haproxy.x` is a tag everywhere but in the configuration reference.
        let dotted = name.ends_with("configuration.md");
        for (section, key) in named_keys(&text, dotted) {
            checked += 1;
            if !key_exists(&section, &key) {
                unknown.push(format!("{name}: [{section}] {key}"));
            }
        }
    }
    assert!(unknown.is_empty(), "keys no config type has: {unknown:#?}");
    // The configuration reference alone names more than 50 keys.
    assert!(
        checked > 50,
        "only {checked} keys found: is the scanner blind?"
    );
}

#[test]
fn every_toml_snippet_in_the_docs_resolves() {
    let mut checked = 0;
    for (name, text) in docs() {
        for block in fenced_blocks(&text, "toml") {
            // A snippet of another file says so first (`# Cargo.toml`).
            let first = block.lines().next().unwrap_or("");
            if first.starts_with('#') && first.contains(".toml") && !first.contains("connector") {
                continue;
            }
            checked += 1;
            let config = Config::parse(&block).unwrap_or_else(|e| panic!("{name}: {e}\n{block}"));
            if let Err(e) = Resolved::new(config, &BTreeMap::new()) {
                panic!("{name}: {e}\n{block}");
            }
        }
    }
    assert!(checked >= 2, "only {checked} TOML snippets found");
}

/// Whether the tag parsers know `haproxy.<key>` (a bad value of a known key
/// is another problem than an unknown key).
fn tag_known(key: &str) -> bool {
    let probe = vec![format!("haproxy.{key}=x")];
    let problems = if key.starts_with("check.") {
        CheckTags::parse(&probe).problems
    } else {
        ServiceTags::parse(&probe).problems
    };
    !problems
        .iter()
        .any(|p| p.contains("unknown tag '") || p.contains("unknown check tag '"))
}

#[test]
fn every_tag_in_the_tag_reference_is_known_to_the_parsers() {
    let text = std::fs::read_to_string(repo().join("docs/tags.md")).expect("docs/tags.md");
    let mut checked = 0;
    let mut unknown = Vec::new();
    for span in code_spans(&text).into_iter().chain(
        fenced_blocks(&text, "hcl")
            .iter()
            .flat_map(|b| b.split('"').map(str::to_string).collect::<Vec<_>>()),
    ) {
        let Some(tag) = span.strip_prefix("haproxy.") else {
            continue;
        };
        // `haproxy.*`, `haproxy.check.*`, `haproxy.domain*`: families.
        if tag.contains('*') {
            continue;
        }
        let key = tag.split_once('=').map_or(tag, |(k, _)| k);
        checked += 1;
        if !tag_known(key) {
            unknown.push(format!("haproxy.{key}"));
        }
    }
    assert!(
        unknown.is_empty(),
        "tags the parsers do not know: {unknown:?}"
    );
    assert!(checked > 20, "only {checked} tags found");
}

#[test]
fn the_scanner_finds_what_it_must() {
    let doc = "## `[haproxy]`: x\n\n| key | default |\n|---|---|\n| `state_file`, `bogus_key` | x |\n\nsee `[daemon] admin_listen`, `[checks] host_map` and `log.level`\n";
    let keys = named_keys(doc, true);
    assert_eq!(
        keys,
        [
            ("haproxy".to_string(), "state_file".to_string()),
            ("haproxy".to_string(), "bogus_key".to_string()),
            ("daemon".to_string(), "admin_listen".to_string()),
            ("checks".to_string(), "host_map".to_string()),
            ("log".to_string(), "level".to_string()),
        ]
    );
    assert!(key_exists("haproxy", "state_file") && !key_exists("haproxy", "bogus_key"));
    assert!(key_exists("mapping.limits", "fuel") && !key_exists("checks", "host_map"));
    assert!(tag_known("enable") && tag_known("check.path") && tag_known("domain.regex"));
    assert!(!tag_known("frobnicate") && !tag_known("check.bogus"));
}
