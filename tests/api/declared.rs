//! Every static scope requirement of the checked-in `schema.graphql` (`@requiresScopes`) holds at run time: each way to
//! reach a declaring field from a root (up to four deep, `_entities` included) is queried without the scope (`null`,
//! `UNAUTHORIZED_FIELD_OR_TYPE`, the declared `requiredScopes`) and with it (a value somewhere).

use std::collections::BTreeSet;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use async_graphql::Value as ConstValue;
use kyc_gateway::authz::{details_scope, verification_scope, wallet_currency_scope};
use kyc_gateway::domain::WalletCurrency;
use kyc_gateway::sandbox::fractal::population::{ADD_ONS, LEVELS};
use kyc_gateway::sandbox::ident::population::{JANICE_WAY, JOHN_SMITH};
use serde_json::Value;

use crate::helpers::{spawn, user_token, TestApp, SEED};

/// A field of an object type, as the SDL prints it.
#[derive(Debug, Clone)]
struct FieldDef {
    name: String,
    /// The named type under lists and non-null.
    target: String,
    /// Required arguments.
    required_args: Vec<String>,
    /// The declared requirement: alternatives of scopes needed together.
    requires: Option<Vec<Vec<String>>>,
}

struct Sdl {
    objects: Vec<(String, Vec<FieldDef>)>,
}

fn named(ty: &Type) -> String {
    match &ty.base {
        BaseType::Named(name) => name.to_string(),
        BaseType::List(inner) => named(inner),
    }
}

fn scopes_of(value: &ConstValue) -> Vec<Vec<String>> {
    let ConstValue::List(outer) = value else { panic!("@requiresScopes(scopes:) is a list") };
    outer
        .iter()
        .map(|inner| match inner {
            ConstValue::List(all) => all
                .iter()
                .map(|s| match s {
                    ConstValue::String(s) => s.clone(),
                    other => panic!("a scope is a string, not {other}"),
                })
                .collect(),
            other => panic!("an alternative is a list, not {other}"),
        })
        .collect()
}

impl Sdl {
    fn parse(text: &str) -> Sdl {
        let document = async_graphql::parser::parse_schema(text).expect("the SDL parses");
        let mut objects = Vec::new();
        let mut entities = Vec::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let TypeKind::Object(object) = &ty.node.kind else { continue };
            let fields: Vec<FieldDef> = object
                .fields
                .iter()
                .map(|f| FieldDef {
                    name: f.node.name.node.to_string(),
                    target: named(&f.node.ty.node),
                    required_args: f
                        .node
                        .arguments
                        .iter()
                        .filter(|a| !a.node.ty.node.nullable && a.node.default_value.is_none())
                        .map(|a| a.node.name.node.to_string())
                        .collect(),
                    requires: f
                        .node
                        .directives
                        .iter()
                        .find(|d| d.node.name.node == "requiresScopes")
                        .map(|d| scopes_of(&d.node.arguments[0].1.node)),
                })
                .collect();
            objects.push((ty.node.name.node.to_string(), fields));
            // The printed SDL leaves federation's `_entities` out (as a subgraph's SDL does): every type with a `@key`
            // gets it back here, as a field of `Query`.
            if ty.node.directives.iter().any(|d| d.node.name.node == "key") {
                entities.push(FieldDef {
                    name: "_entities".into(),
                    target: ty.node.name.node.to_string(),
                    required_args: vec!["representations".into()],
                    requires: None,
                });
            }
        }
        if let Some((_, query)) = objects.iter_mut().find(|(name, _)| name == "Query") {
            query.extend(entities);
        }
        Sdl { objects }
    }

    fn fields(&self, type_name: &str) -> Option<&[FieldDef]> {
        self.objects.iter().find(|(n, _)| n == type_name).map(|(_, f)| f.as_slice())
    }
}

/// Values the test prepares before walking: a Fractal authorization started and approved, ready to complete.
static LINK: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Argument values for the fields on the way to a guarded field (required ones, and list sizes).
fn arguments(parent: &str, field: &str) -> Option<&'static str> {
    Some(match (parent, field) {
        ("Mutation", "startFractalLink") => r#"(redirectUri: "http://localhost:3000/fractal/callback")"#,
        ("Mutation", "completeFractalLink") => {
            let (state, code) = LINK.get()?;
            Box::leak(format!(r#"(state: "{state}", code: "{code}")"#).into_boxed_str())
        }
        ("Query", "user") => r#"(id: "b76ab44d-b71e-4d19-b6f9-f6e88cd73946")"#,
        ("Query", "users") => r#"(ids: ["b76ab44d-b71e-4d19-b6f9-f6e88cd73946"])"#,
        ("Query", "_entities") => {
            r#"(representations: [{__typename: "User", id: "b76ab44d-b71e-4d19-b6f9-f6e88cd73946"}])"#
        }
        ("Query", "kycApplication") => const_format(JANICE_WAY),
        ("Query", "kycApplications") => "(first: 100)",
        ("VerificationStats", "users") => "(first: 5)",
        ("Mutation", "createKycApplication") => "(input: {})",
        ("Mutation", "updateKycApplicationStatus") => update_arguments(),
        _ => "",
    })
}

fn const_format(id: &str) -> &'static str {
    Box::leak(format!(r#"(id: "{id}")"#).into_boxed_str())
}

fn update_arguments() -> &'static str {
    Box::leak(format!(r#"(id: "{JOHN_SMITH}", status: ACCEPTED)"#).into_boxed_str())
}

/// A way from a root to a field: `(parent type, field)` pairs.
type Path = Vec<(String, FieldDef)>;

/// Every path of at most `depth` fields from `root` to a field of `target` named `field`.
fn paths(sdl: &Sdl, root: &str, target: &str, field: &str, depth: usize) -> Vec<Path> {
    let mut found = Vec::new();
    let mut stack: Vec<(String, Path)> = vec![(root.to_owned(), Vec::new())];
    while let Some((ty, path)) = stack.pop() {
        let Some(fields) = sdl.fields(&ty) else { continue };
        for f in fields {
            // A required argument the table has no value for closes this way.
            if !f.required_args.is_empty() && arguments(&ty, &f.name).is_none_or(str::is_empty) {
                continue;
            }
            let mut next = path.clone();
            next.push((ty.clone(), f.clone()));
            if ty == target && f.name == field {
                found.push(next);
            } else if next.len() < depth && sdl.fields(&f.target).is_some() && !f.name.starts_with("__") {
                stack.push((f.target.clone(), next));
            }
        }
    }
    found
}

/// Whether any field of `target` can be reached from `root` within four fields.
fn reachable(sdl: &Sdl, root: &str, target: &str) -> bool {
    sdl.fields(target).into_iter().flatten().any(|f| !paths(sdl, root, target, &f.name, 4).is_empty())
}

/// The operation that selects `path`.
fn operation(sdl: &Sdl, root: &str, path: &Path) -> String {
    let (_, last) = path.last().expect("a path has a field");
    let mut selection = if sdl.fields(&last.target).is_some() { "{ __typename }".to_owned() } else { String::new() };
    for (parent, field) in path.iter().rev() {
        let args = arguments(parent, &field.name).unwrap_or("");
        if field.name == "_entities" {
            // `_entities` answers the union `_Entity`: its fields are selected on the entity type.
            selection = format!("{{ ... on {} {selection} }}", field.target);
        }
        selection = format!("{}{args} {selection}", field.name);
        selection = format!("{{ {selection} }}");
    }
    match root {
        "Mutation" => format!("mutation {selection}"),
        "Subscription" => format!("subscription {selection}"),
        _ => selection,
    }
}

/// Every occurrence of the path's last field in `data`: its value and its response path.
fn occurrences(data: &Value, path: &Path) -> Vec<(Value, Vec<Value>)> {
    let mut current: Vec<(&Value, Vec<Value>)> = vec![(data, Vec::new())];
    for (i, (_, field)) in path.iter().enumerate() {
        let mut next = Vec::new();
        for (value, at) in current {
            let Some(child) = value.get(&field.name) else { continue };
            let mut at = at.clone();
            at.push(Value::String(field.name.clone()));
            let last = i + 1 == path.len();
            match child {
                Value::Array(items) if !last => {
                    for (index, item) in items.iter().enumerate() {
                        let mut at = at.clone();
                        at.push(Value::from(index));
                        next.push((item, at));
                    }
                }
                other => next.push((other, at)),
            }
        }
        current = next;
    }
    current.into_iter().map(|(v, at)| (v.clone(), at)).collect()
}

/// Every scope the gateway knows: with it, nothing static is denied.
fn all_scopes() -> BTreeSet<String> {
    let mut all: BTreeSet<String> = [
        "uid:read",
        "contact:read",
        "client.users:read",
        "client.stats:read",
        "kyc_application:read",
        "kyc_application:write",
        "review.internal:read",
        "verification.wallet:read",
        "fractal.link:write",
        "audit:read",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for item in LEVELS.iter().chain(ADD_ONS.iter()) {
        all.insert(verification_scope(item));
        all.insert(details_scope(item));
    }
    all.extend(WalletCurrency::ALL.iter().map(|c| wallet_currency_scope(c.as_str())));
    all
}

/// Starts linking the seed person's Fractal and approves it at the sandbox: the `state` and `code` to complete with.
async fn prepare_link(app: &TestApp) -> (String, String) {
    let token = user_token(SEED, "fractal.link:write");
    let q = r#"mutation { startFractalLink(redirectUri: "http://localhost:3000/fractal/callback") { authorizeUrl state } }"#;
    let start = app.query(&token, q).await.ok();
    let url = start.data("startFractalLink.authorizeUrl").as_str().expect("authorize URL").to_owned();
    let state = start.data("startFractalLink.state").as_str().expect("state").to_owned();
    let code = crate::linking::approve(&url, SEED).await;
    (state, code)
}

/// The answer to `query` for a token of the seed person holding `scopes`: over HTTP, or for a subscription, its
/// first event (an event about the seed person's `basic` level, published once the subscription runs).
async fn ask(app: &TestApp, scopes: &BTreeSet<String>, root: &str, query: &str) -> Value {
    let scope: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = user_token(SEED, &scope.join(" "));
    if root != "Subscription" {
        return app.query(&token, query).await.body;
    }
    app.subscribed(0).await;
    let mut ws = crate::ws::Ws::ready(app, &token).await;
    ws.subscribe("1", query).await;
    app.subscribed(1).await;
    crate::subscriptions::publish(app, SEED, "basic", "approved").await;
    ws.event("1").await
}

#[tokio::test]
async fn every_declared_scope_requirement_is_enforced_on_every_way_to_its_field() {
    let sdl_text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema");
    let sdl = Sdl::parse(&sdl_text);
    let app = spawn().await;
    let all = all_scopes();
    let _ = LINK.set(prepare_link(&app).await);
    let mut declared = 0;
    // Mutations last: the allowed one changes the sandbox. A type reached from the subscription root only is checked
    // there (its fields are resolved per event).
    let from_query: BTreeSet<&str> = sdl
        .objects
        .iter()
        .filter(|(name, _)| name == "Query" || reachable(&sdl, "Query", name))
        .map(|(name, _)| name.as_str())
        .collect();
    for root in ["Query", "Subscription", "Mutation"] {
        for (type_name, fields) in &sdl.objects {
            for field in fields {
                let Some(required) = &field.requires else { continue };
                let home = match type_name.as_str() {
                    "Mutation" => "Mutation",
                    name if from_query.contains(name) => "Query",
                    _ => "Subscription",
                };
                if root != home {
                    continue;
                }
                declared += 1;
                let ways = paths(&sdl, root, type_name, &field.name, 4);
                assert!(!ways.is_empty(), "{type_name}.{} cannot be reached from {root}", field.name);
                let mut denied_somewhere = false;
                let mut valued_somewhere = false;
                for way in &ways {
                    // What the ancestors on the way need stays; the rest of this field's requirement goes.
                    let needed: BTreeSet<&String> = way[..way.len() - 1]
                        .iter()
                        .filter_map(|(_, f)| f.requires.as_ref())
                        .flatten()
                        .flatten()
                        .collect();
                    let lacking: BTreeSet<String> = all
                        .iter()
                        .filter(|s| !required.iter().flatten().any(|r| r == *s) || needed.contains(s))
                        .cloned()
                        .collect();
                    if lacking.len() == all.len() {
                        // An ancestor on this way needs the same scopes: the field cannot be told apart here.
                        continue;
                    }
                    let query = operation(&sdl, root, way);
                    let body = ask(&app, &lacking, root, &query).await;
                    let errors = body["errors"].as_array().cloned().unwrap_or_default();
                    let found = occurrences(&body["data"], way);
                    let mut paths_seen: Vec<Vec<Value>> = found.iter().map(|(_, at)| at.clone()).collect();
                    // A denied non-null field is left out of its parent (which may then be null), with its error.
                    let names: Vec<&str> = way.iter().map(|(_, f)| f.name.as_str()).collect();
                    let left_out: Vec<Vec<Value>> = errors
                        .iter()
                        .filter_map(|e| {
                            let at = e["path"].as_array()?;
                            let fields: Vec<&str> = at.iter().filter_map(Value::as_str).collect();
                            (fields == names && !paths_seen.contains(at)).then(|| at.clone())
                        })
                        .collect();
                    paths_seen.extend(left_out);
                    for (value, _) in &found {
                        assert!(value.is_null(), "{query} leaked {value} without {required:?}");
                    }
                    for at in &paths_seen {
                        let error = errors
                            .iter()
                            .find(|e| e["path"].as_array() == Some(at))
                            .unwrap_or_else(|| panic!("{query}: no denial at {at:?}: {body:#}"));
                        assert_eq!(error["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{query}");
                        assert_eq!(error["extensions"]["requiredScopes"], serde_json::json!(required), "{query}");
                        denied_somewhere = true;
                    }
                    let body = ask(&app, &all, root, &query).await;
                    let found = occurrences(&body["data"], way);
                    valued_somewhere |= found.iter().any(|(v, _)| !v.is_null() && v != &Value::Array(Vec::new()));
                }
                assert!(denied_somewhere, "{type_name}.{} was never reached to be denied", field.name);
                assert!(valued_somewhere, "{type_name}.{} never had a value with its scopes", field.name);
            }
        }
    }
    assert!(declared >= 15, "every declaring field was checked: {declared}");
}
