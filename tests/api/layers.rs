//! Dependencies point one way: a module of `src/` names (`crate::<module>`) only modules of lower layers, in the
//! order ARCHITECTURE.md ("Layers") lists them. The table below is that list; the test also checks that the two
//! agree, and that every module of `src/` has a layer.

use std::collections::BTreeMap;
use std::path::Path;

/// The layers, lowest first; a module may use those of its own layer's predecessors and nothing above.
const LAYERS: &[&[&str]] = &[
    &["clock", "digest", "env", "secret", "rate_limit"],
    &["domain"],
    &["telemetry"],
    &["freshness", "store"],
    &["auth"],
    &["authz"],
    &["directory"],
    &["audit"],
    &["providers"],
    &["webhooks"],
    &["config", "sandbox"],
    &["graphql"],
    &["server"],
    &["app"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `crate::<name>` a source text names, outside comments; the sandbox crate's own name (`kyc_sandbox::`) counts
/// as `crate::sandbox`, its re-export.
fn named_modules(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        if code.contains("kyc_sandbox::") {
            out.push("sandbox".to_owned());
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Each upward import of the sources under `root`: `(file, module, the higher module it names)`.
fn upward_imports(root: &Path) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).expect("a folder").map(|e| e.expect("an entry").path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(root).expect("under src");
        let module = relative.components().next().expect("a component").as_os_str().to_string_lossy();
        let module = module.trim_end_matches(".rs").to_owned();
        let Some(own) = layer_of(&module) else { continue };
        let source = std::fs::read_to_string(&path).expect("a source file");
        for named in named_modules(&source) {
            if let Some(theirs) = layer_of(&named) {
                if theirs > own {
                    found.push((relative.display().to_string(), module.clone(), named));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn no_module_imports_a_higher_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let upward = upward_imports(&root);
    assert!(upward.is_empty(), "imports of a higher layer (file, module, the higher one): {upward:#?}");
}

#[test]
fn every_module_has_a_layer_and_architecture_md_lists_the_same_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&root).expect("src") {
        let name = entry.expect("an entry").file_name().to_string_lossy().trim_end_matches(".rs").to_owned();
        if name != "lib" && name != "main" {
            assert!(layer_of(&name).is_some(), "src/{name} has no layer in tests/api/layers.rs");
        }
    }
    let architecture = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md");
    let listed: BTreeMap<usize, Vec<String>> = architecture
        .lines()
        .skip_while(|l| *l != "## Layers")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| {
            let (number, modules) = l.strip_prefix("| ")?.split_once(" | ")?;
            let number: usize = number.trim().parse().ok()?;
            let modules = modules.split(" |").next()?.split(',').map(|m| m.trim().trim_matches('`').to_owned());
            Some((number, modules.collect()))
        })
        .collect();
    let ours: BTreeMap<usize, Vec<String>> =
        LAYERS.iter().enumerate().map(|(i, l)| (i, l.iter().map(|m| m.to_string()).collect())).collect();
    assert_eq!(listed, ours, "ARCHITECTURE.md's \"Layers\" table and this test's differ");
}

/// The check itself catches an upward import: a lower module that names a higher one is reported.
#[test]
fn an_upward_import_is_caught() {
    let dir = std::env::temp_dir().join(format!("kyc-layers-{}", kyc_gateway::secret::random_token()));
    std::fs::create_dir_all(dir.join("domain")).expect("a folder");
    std::fs::write(dir.join("domain/mod.rs"), "use crate::graphql::Services; // upward\n").expect("written");
    std::fs::write(dir.join("graphql.rs"), "use crate::domain::Provider;\n").expect("written");
    std::fs::create_dir_all(dir.join("providers")).expect("a folder");
    std::fs::write(dir.join("providers/fake.rs"), "let s = kyc_sandbox::Sandbox::start(&settings);\n")
        .expect("written");
    let upward = upward_imports(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        upward,
        [
            ("domain/mod.rs".to_owned(), "domain".to_owned(), "graphql".to_owned()),
            ("providers/fake.rs".to_owned(), "providers".to_owned(), "sandbox".to_owned()),
        ]
    );
}

/// Each file under `src/` that names a provider's folder (`providers::<p>`, or `super::<p>` from another provider's
/// folder) other than its own: a provider is one folder, reached only through the registry.
fn crossings(root: &Path) -> Vec<(String, String)> {
    let providers = root.join("providers");
    let folders: Vec<String> = std::fs::read_dir(&providers)
        .expect("src/providers")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().expect("a name").to_string_lossy().into_owned())
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).expect("a folder").map(|e| e.expect("an entry").path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(root).expect("under src").display().to_string();
        let own = relative.strip_prefix("providers/").and_then(|r| r.split_once('/')).map(|(folder, _)| folder);
        let source = std::fs::read_to_string(&path).expect("a source file");
        let code: String = source.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        for folder in &folders {
            if own == Some(folder.as_str()) {
                continue;
            }
            let from_a_sibling = own.is_some() && names(&code, &format!("super::{folder}"));
            if names(&code, &format!("providers::{folder}")) || from_a_sibling {
                found.push((relative.clone(), folder.clone()));
            }
        }
    }
    found.sort();
    found
}

/// Whether `code` holds `path` as a whole path segment (`super::ident`, not `super::identity`).
fn names(code: &str, path: &str) -> bool {
    code.match_indices(path).any(|(at, _)| {
        let next = code[at + path.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn no_code_outside_a_provider_s_folder_names_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let crossings = crossings(&root);
    assert!(crossings.is_empty(), "files naming another provider's folder (file, folder): {crossings:#?}");
}

/// The check itself catches a crossing: the hub, or a provider, naming a provider's folder.
#[test]
fn a_crossing_into_a_provider_s_folder_is_caught() {
    let dir = std::env::temp_dir().join(format!("kyc-crossings-{}", kyc_gateway::secret::random_token()));
    for folder in ["providers/alpha", "providers/beta"] {
        std::fs::create_dir_all(dir.join(folder)).expect("a folder");
    }
    std::fs::write(dir.join("providers/hub.rs"), "use crate::providers::alpha::Client;\n").expect("written");
    std::fs::write(dir.join("providers/beta/mod.rs"), "use super::super::alpha::models;\n").expect("written");
    std::fs::write(dir.join("providers/alpha/mod.rs"), "use crate::providers::alpha::client; // own\n")
        .expect("written");
    let found = crossings(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        found,
        [("providers/beta/mod.rs".to_owned(), "alpha".to_owned()), ("providers/hub.rs".to_owned(), "alpha".to_owned())]
    );
}
