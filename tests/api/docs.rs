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

#[test]
fn the_readme_configuration_table_lists_every_variable_the_configuration_reads() {
    let section = readme_section("## Configuration");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config");
    let mut missing = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/config") {
        let source = std::fs::read_to_string(entry.expect("an entry").path()).expect("a source file");
        // The variables the code reads, not those its unit tests make up.
        let code = source.split("#[cfg(test)]").next().unwrap_or("");
        // Whole names only: prefixes (`KYC_GATEWAY_FRACTAL_`) and messages are not variables.
        for name in code.split('"').skip(1).step_by(2) {
            let is_variable = name.starts_with("KYC_GATEWAY_")
                && !name.ends_with('_')
                && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_variable && !section.contains(&format!("`{name}`")) {
                missing.insert(name.to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "README.md's configuration table lacks {missing:?}");
}
