//! The README stays true to the code where a reader relies on it.

use std::collections::BTreeSet;

use kyc_gateway::graphql::errors::ErrorCode;

fn readme_section(heading: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let start = readme.find(heading).unwrap_or_else(|| panic!("the README has a section {heading:?}"));
    let rest = &readme[start + heading.len()..];
    let end = rest.find("\n## ").or_else(|| rest.find("\n### ")).unwrap_or(rest.len());
    rest[..end].to_owned()
}

#[test]
fn the_readme_lists_every_error_code_and_no_other() {
    let section = readme_section("### Errors");
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .flat_map(|line| line.split(" |").next().map(str::to_owned))
        .flat_map(|cell| cell.split(", ").map(|c| c.trim_matches('`').to_owned()).collect::<Vec<_>>())
        .collect();
    let codes: BTreeSet<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(listed, codes, "the README's error table and ErrorCode differ");
}
