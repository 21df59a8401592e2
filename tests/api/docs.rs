//! The documentation stays true to the code where a reader relies on it, and its links lead somewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kyc_gateway::graphql::errors::ErrorCode;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The text under the heading line `heading` of `file`, up to the next heading of any level.
fn section(file: &str, heading: &str) -> String {
    let text = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut lines = text.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "{file} has a section {heading:?}");
    let mut fenced = false;
    let mut out = String::new();
    for line in lines {
        fenced ^= line.trim_start().starts_with("```");
        if !fenced && line.starts_with('#') {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn the_api_docs_list_every_error_code_and_no_other() {
    let section = section("docs/api.md", "## Errors");
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .flat_map(|line| line.split(" |").next().map(str::to_owned))
        .flat_map(|cell| cell.split(", ").map(|c| c.trim_matches('`').to_owned()).collect::<Vec<_>>())
        .collect();
    let codes: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(listed, codes, "the error table of docs/api.md and ErrorCode differ");
}

#[test]
fn the_configuration_table_lists_every_variable_the_gateway_reads_and_no_other() {
    let section = section("docs/configuration.md", "# Configuration");
    assert!(section.contains("| variable | default | meaning |"), "the section holds the table");
    let known = kyc_gateway::config::variables::known();
    // Each provider's policy settings and the sandbox's per-provider faults are documented once, by pattern.
    let by_pattern = |name: &str| {
        let policy = kyc_gateway::providers::section::POLICY_SETTINGS.iter().any(|s| name.ends_with(&format!("_{s}")));
        (policy && section.contains("`KYC_GATEWAY_<PROVIDER>_<SETTING>`"))
            || (name.starts_with("KYC_GATEWAY_SANDBOX_")
                && name.ends_with("_FAULTS")
                && section.contains("`KYC_GATEWAY_SANDBOX_<PROVIDER>_FAULTS`"))
    };
    let missing: BTreeSet<&String> =
        known.iter().filter(|name| !section.contains(&format!("`{name}`")) && !by_pattern(name)).collect();
    assert!(missing.is_empty(), "docs/configuration.md's table lacks {missing:?}");
    let documented: BTreeSet<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| {
            n.starts_with("KYC_GATEWAY_") && n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    let stale: BTreeSet<&&str> = documented.iter().filter(|n| !known.iter().any(|k| k == *n)).collect();
    assert!(stale.is_empty(), "docs/configuration.md documents variables the gateway does not read: {stale:?}");
}

#[test]
fn every_relative_link_of_the_docs_leads_to_a_file_and_heading_that_exist() {
    let files = markdown_files();
    assert!(files.iter().any(|f| f.ends_with("docs/api.md")), "docs/ found");
    let mut anchors: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable doc");
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() { file.clone() } else { file.parent().expect("a directory").join(path) };
            let at = format!("{}:{line}: {target}", file.strip_prefix(ROOT).expect("in the repository").display());
            if !resolved.exists() {
                broken.push(format!("{at}: no such file"));
            } else if !anchor.is_empty() {
                let known = anchors.entry(resolved.clone()).or_insert_with(|| {
                    heading_anchors(&std::fs::read_to_string(&resolved).expect("a readable link target"))
                });
                if !known.contains(anchor) {
                    broken.push(format!("{at}: no heading with that anchor"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// README.md, ARCHITECTURE.md and the other markdown files at the root, and those of docs/, k8s/, src/ and tests/.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>, deep: bool) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for path in entries.map(|e| e.expect("an entry").path()) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() && deep && !name.starts_with('.') && name != "node_modules" && name != "target" {
                walk(&path, out, true);
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let root = Path::new(ROOT);
    let mut files = Vec::new();
    walk(root, &mut files, false);
    for dir in ["docs", "k8s", "src", "tests"] {
        walk(&root.join(dir), &mut files, true);
    }
    files.sort();
    files
}

/// The `[text](target)` links of a markdown text with their line numbers, outside code blocks and code spans.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans are the odd pieces between backticks.
        for prose in line.split('`').step_by(2) {
            let mut rest = prose;
            while let Some(at) = rest.find("](") {
                let after = &rest[at + 2..];
                let end = after.find(')').unwrap_or(after.len());
                out.push((i + 1, after[..end].trim().to_owned()));
                rest = &after[end..];
            }
        }
    }
    out
}

/// GitHub's anchors for the headings of a markdown text: lower case, spaces to `-`, punctuation dropped, repeats
/// numbered (`-1`, `-2`).
fn heading_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(heading) = line.strip_prefix('#').map(|h| h.trim_start_matches('#')) else { continue };
        if fenced || !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    anchors
}
