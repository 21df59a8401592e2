//! Stage 2, limits and cost, decided before anything runs: a **pre-scan** of the raw text (directives, nesting) before
//! the parser, then one **analysis** of the parsed document, fragments memoised so it stays linear in its size:
//! aliases, directives, root fields, depth and cost (a list multiplies what is under it by its size).

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Field, OperationType, Selection, SelectionSet};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{Positioned, Value as ConstValue, Variables};

use crate::config::QueryLimits;
use crate::graphql::errors::ErrorCode;

/// Bracket nesting the parser is allowed to see at all (its recursion is unbounded).
const MAX_NESTING: usize = 64;

/// Why an operation was refused before it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
    /// The measured value and its limit (`extensions.cost`/`extensions.limit` for the cost).
    pub measured: u64,
    pub limit: u64,
}

/// A refusal before execution as an error, with its measure: `extensions.cost` for the cost, `measured` and `limit`
/// always.
pub fn refused(refused: Refused) -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new(refused.message, None);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", refused.code.as_str());
    if refused.code == ErrorCode::CostLimitExceeded {
        extensions.set("cost", async_graphql::Value::from(refused.measured));
    }
    extensions.set("measured", async_graphql::Value::from(refused.measured));
    extensions.set("limit", async_graphql::Value::from(refused.limit));
    error
}

impl Refused {
    pub(crate) fn new(code: ErrorCode, what: &str, measured: u64, limit: u64) -> Self {
        Refused {
            code,
            message: format!("the operation has {what} {measured}; at most {limit} are allowed"),
            measured,
            limit,
        }
    }
}

/// What the analysis measured of an accepted operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measured {
    pub cost: u64,
    pub depth: usize,
}

/// The pre-scan: directives and nesting of the raw text (outside strings and comments), then its size.
pub fn prescan(text: &str, limits: &QueryLimits) -> Result<(), Refused> {
    let bytes = text.as_bytes();
    let (mut i, mut directives, mut nesting, mut deepest) = (0, 0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'@' => directives += 1,
            b'{' | b'[' | b'(' => {
                nesting += 1;
                deepest = deepest.max(nesting);
            }
            b'}' | b']' | b')' => nesting = nesting.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    if directives > limits.max_directives {
        return Err(Refused::new(
            ErrorCode::DirectiveLimitExceeded,
            "directives:",
            directives as u64,
            limits.max_directives as u64,
        ));
    }
    if deepest > MAX_NESTING {
        return Err(Refused::new(ErrorCode::DepthLimitExceeded, "brackets nested", deepest as u64, MAX_NESTING as u64));
    }
    if text.len() > limits.max_query_bytes {
        let message = format!("the document has {} bytes; at most {} are allowed", text.len(), limits.max_query_bytes);
        return Err(Refused {
            code: ErrorCode::QueryTooLarge,
            message,
            measured: text.len() as u64,
            limit: limits.max_query_bytes as u64,
        });
    }
    Ok(())
}

/// What the analysis needs of the schema: the root types, and each field's type (`[VerificationCase!]`).
pub trait Types {
    fn root(&self, operation: OperationType) -> &str;
    fn field_type(&self, parent: &str, field: &str) -> Option<&str>;
}

impl Types for Registry {
    fn root(&self, operation: OperationType) -> &str {
        match operation {
            OperationType::Query => &self.query_type,
            OperationType::Mutation => self.mutation_type.as_deref().unwrap_or("Mutation"),
            OperationType::Subscription => self.subscription_type.as_deref().unwrap_or("Subscription"),
        }
    }

    fn field_type(&self, parent: &str, field: &str) -> Option<&str> {
        self.types.get(parent)?.field_by_name(field).map(|f| f.ty.as_str())
    }
}

/// What one selection set (fragments expanded) amounts to.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    cost: u64,
    /// The cost of a connection's `edges`/`nodes` in this set, per item of a page: the field of the connection
    /// multiplies it by its page size (so a fragment on a connection type is costed once, whatever page it is in).
    paged: u64,
    depth: usize,
    /// Fields directly in the set (through fragments): the root fields, for an operation's set.
    fields: usize,
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    types: &'a dyn Types,
    variables: &'a Variables,
    limits: &'a QueryLimits,
    fragments: HashMap<&'a str, Stats>,
    visiting: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    /// A list field's expected size, or a connection's page size: its `first`/`last`, the length of its `ids` (or of
    /// `_entities`' `representations`), else the configured default. A negative size is left to the resolver, which
    /// refuses it.
    fn list_size(&self, field: &Field) -> u64 {
        let value = |name: &str| {
            let value = field.get_argument(name)?;
            value.node.clone().into_const_with(|var| self.variables.get(&var).cloned().ok_or(())).ok()
        };
        for name in ["first", "last"] {
            if let Some(ConstValue::Number(n)) = value(name) {
                return n.as_u64().unwrap_or(if n.as_i64().is_some() { 0 } else { u64::MAX });
            }
        }
        match value("ids").or_else(|| value("representations")) {
            Some(ConstValue::List(ids)) => ids.len() as u64,
            _ => self.limits.default_list_size,
        }
    }

    fn selection_set(&mut self, set: &'a Positioned<SelectionSet>, parent: &str) -> Result<Stats, Refused> {
        let mut total = Stats::default();
        for selection in &set.node.items {
            let stats = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.directives.len() > self.limits.max_directives_per_field {
                        return Err(Refused::new(
                            ErrorCode::DirectiveLimitExceeded,
                            "directives on one field:",
                            field.directives.len() as u64,
                            self.limits.max_directives_per_field as u64,
                        ));
                    }
                    let ty = self.types.field_type(parent, &field.name.node);
                    let child_type = ty.map(MetaTypeName::concrete_typename).unwrap_or("");
                    let list = ty.is_some_and(|t| t.trim_end_matches('!').starts_with('['));
                    let child = if field.selection_set.node.items.is_empty() {
                        Stats::default()
                    } else {
                        self.selection_set(&field.selection_set, child_type)?
                    };
                    // What is under the field, a connection's edges at the field's page size.
                    let under = match child.paged {
                        0 => child.cost,
                        paged => child.cost.saturating_add(self.list_size(field).saturating_mul(paged)),
                    };
                    let (cost, paged) = if field.name.node.starts_with("__") {
                        // Introspection reads the schema in memory, bounded by the schema's size: it costs 1.
                        (1, 0)
                    } else if list && is_page(parent, &field.name.node) {
                        // A connection's edges: counted once per item of the connection's page.
                        (1, under)
                    } else {
                        let multiplier = if list { self.list_size(field) } else { 1 };
                        (1u64.saturating_add(multiplier.saturating_mul(under)), 0)
                    };
                    Stats { cost, paged, depth: 1 + child.depth, fields: 1 }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match self.fragments.get(name) {
                        Some(stats) => *stats,
                        None => {
                            let Some(fragment) = self.doc.fragments.get(&spread.node.fragment_name.node) else {
                                continue; // validation reports the unknown fragment
                            };
                            if !self.visiting.insert(name) {
                                // A cycle: validation refuses it; it costs nothing more here.
                                continue;
                            }
                            let on = fragment.node.type_condition.node.on.node.as_str();
                            let stats = self.selection_set(&fragment.node.selection_set, on)?;
                            self.visiting.remove(name);
                            self.fragments.insert(name, stats);
                            stats
                        }
                    }
                }
                Selection::InlineFragment(inline) => {
                    let on = inline.node.type_condition.as_ref().map_or(parent, |c| c.node.on.node.as_str()).to_owned();
                    self.selection_set(&inline.node.selection_set, &on)?
                }
            };
            total.cost = total.cost.saturating_add(stats.cost);
            total.paged = total.paged.saturating_add(stats.paged);
            total.depth = total.depth.max(stats.depth);
            total.fields += stats.fields;
        }
        Ok(total)
    }
}

/// Whether `parent.field` is the page of a connection: its `edges` or `nodes`.
fn is_page(parent: &str, field: &str) -> bool {
    parent.ends_with("Connection") && matches!(field, "edges" | "nodes")
}

/// The size of a value standing for a list size: a number, or a list's length.
fn size_of(value: &ConstValue) -> u64 {
    match value {
        ConstValue::Number(n) => n.as_u64().unwrap_or(0),
        ConstValue::List(items) => items.len() as u64,
        _ => 0,
    }
}

/// The request's variables, and for each one it leaves out, the default an operation of the document gives it (the
/// largest, when operations give different ones: a bound for whichever operation runs).
fn with_defaults(doc: &ExecutableDocument, variables: &Variables) -> Variables {
    let mut all = variables.clone();
    for (_, operation) in doc.operations.iter() {
        for definition in &operation.node.variable_definitions {
            let name = &definition.node.name.node;
            let Some(default) = &definition.node.default_value else { continue };
            if variables.contains_key(name) {
                continue;
            }
            if all.get(name).is_none_or(|known| size_of(&default.node) > size_of(known)) {
                all.insert(name.clone(), default.node.clone());
            }
        }
    }
    all
}

/// Aliases anywhere in the document (each written once counts once).
pub(crate) fn aliases(doc: &ExecutableDocument) -> usize {
    fn count(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => usize::from(f.node.alias.is_some()) + count(&f.node.selection_set.node),
                Selection::InlineFragment(i) => count(&i.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    doc.operations.iter().map(|(_, op)| count(&op.node.selection_set.node)).sum::<usize>()
        + doc.fragments.values().map(|f| count(&f.node.selection_set.node)).sum::<usize>()
}

/// The analysis of every operation of the document (the one a request names is among them; measuring all keeps an
/// unchosen operation from hiding a bomb).
pub fn analyze(
    doc: &ExecutableDocument,
    variables: &Variables,
    types: &dyn Types,
    limits: &QueryLimits,
) -> Result<Measured, Refused> {
    let aliases = aliases(doc);
    if aliases > limits.max_aliases {
        return Err(Refused::new(ErrorCode::AliasLimitExceeded, "aliases:", aliases as u64, limits.max_aliases as u64));
    }
    let variables = &with_defaults(doc, variables);
    let mut walk = Walk { doc, types, variables, limits, fragments: HashMap::new(), visiting: HashSet::new() };
    let mut measured = Measured::default();
    for (_, operation) in doc.operations.iter() {
        let root = types.root(operation.node.ty).to_owned();
        let mut stats = walk.selection_set(&operation.node.selection_set, &root)?;
        stats.cost = stats.cost.saturating_add(limits.default_list_size.saturating_mul(stats.paged));
        if stats.fields > limits.max_root_fields {
            return Err(Refused::new(
                ErrorCode::RootFieldLimitExceeded,
                "root fields:",
                stats.fields as u64,
                limits.max_root_fields as u64,
            ));
        }
        if stats.depth > limits.max_depth {
            return Err(Refused::new(
                ErrorCode::DepthLimitExceeded,
                "fields nested",
                stats.depth as u64,
                limits.max_depth as u64,
            ));
        }
        if stats.cost > limits.max_cost {
            let mut refused = Refused::new(ErrorCode::CostLimitExceeded, "a cost of", stats.cost, limits.max_cost);
            if stats.cost == u64::MAX {
                refused.message =
                    format!("the operation's cost is beyond counting; at most {} is allowed", limits.max_cost);
            }
            return Err(refused);
        }
        measured.cost = measured.cost.max(stats.cost);
        measured.depth = measured.depth.max(stats.depth);
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits::default()
    }

    /// The part of the gateway's schema these tests walk.
    struct Schema;

    impl Types for Schema {
        fn root(&self, _: OperationType) -> &str {
            "Query"
        }

        fn field_type(&self, parent: &str, field: &str) -> Option<&str> {
            Some(match (parent, field) {
                ("Query", "me") => "User",
                ("Query", "users") => "[User!]!",
                ("Query", "_entities") => "[_Entity]!",
                ("User", "verificationCases") => "[VerificationCase!]!",
                ("User", "kycApplications") => "[KycApplication!]",
                ("User", "id" | "kycState") => "ID",
                ("VerificationCase", "details") => "VerificationDetails",
                ("VerificationCase", "level") => "String!",
                ("VerificationDetails", "fullName") => "String",
                ("KycApplication", "user") => "User",
                ("KycApplication", "id") => "ID!",
                ("Query", "kycApplications") => "KycApplicationConnection",
                ("KycApplicationConnection", "edges") => "[KycApplicationEdge!]!",
                ("KycApplicationConnection", "totalCount") => "Int!",
                ("KycApplicationEdge", "node") => "KycApplication!",
                _ => return None,
            })
        }
    }

    fn measure(query: &str) -> Result<Measured, Refused> {
        prescan(query, &limits())?;
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        analyze(&doc, &Variables::default(), &Schema, &limits())
    }

    #[test]
    fn a_list_multiplies_what_is_under_it_by_its_size() {
        let one = measure("{ me { id } }").expect("cheap");
        assert_eq!(one, Measured { cost: 2, depth: 2 });
        let hundred = measure(r#"{ users(ids: ["a","b","c"]) { kycState(level: "basic") } }"#).expect("fine");
        assert_eq!(hundred.cost, 1 + 3);
        let entities = r#"{ _entities(representations: [{__typename: "User", id: "a"}, {__typename: "User", id: "b"}]) { ... on User { kycState(level: "basic") } } }"#;
        assert_eq!(measure(entities).expect("fine").cost, 1 + 2);
        let listed = measure("{ me { verificationCases { level details { fullName } } } }").expect("fine");
        // me 1 + (cases 1 + 10 x (level 1 + details (1 + fullName 1)))
        assert_eq!(listed.cost, 1 + 1 + 10 * 3);
    }

    fn measure_with(query: &str, variables: serde_json::Value) -> Result<Measured, Refused> {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        analyze(&doc, &Variables::from_json(variables), &Schema, &limits())
    }

    #[test]
    fn a_connection_s_page_size_multiplies_its_edges_wherever_they_are_written() {
        let cost = |query: &str| measure_with(query, serde_json::json!({})).expect("fine").cost;
        // kycApplications 1 + edges (1 + first x (node 1 + id 1))
        assert_eq!(cost("{ kycApplications(first: 100) { totalCount edges { node { id } } } }"), 1 + 1 + 1 + 100 * 2);
        assert_eq!(cost("{ kycApplications { edges { node { id } } } }"), 1 + 1 + 10 * 2);
        // Through a fragment on the connection, and an inline one, at two page sizes.
        let spread = "{ a: kycApplications(first: 50) { ...Page } b: kycApplications(first: 5) { ... on             KycApplicationConnection { ...Page } } } fragment Page on KycApplicationConnection { edges { node { id } } }";
        assert_eq!(cost(spread), (2 + 50 * 2) + (2 + 5 * 2));
        // A page of a page: each connection sizes its own edges.
        let nested = "{ kycApplications(first: 20) { edges { node { user { kycApplications { id } } } } } }";
        assert_eq!(cost(nested), 2 + 20 * (1 + 1 + 1 + 10));
        // A negative page is the resolver's to refuse.
        assert_eq!(cost("{ kycApplications(first: -1) { edges { node { id } } } }"), 2);
    }

    #[test]
    fn sizes_given_by_variables_take_their_values_else_their_defaults() {
        let page = "query($n: Int = 100) { kycApplications(first: $n) { edges { node { id } } } }";
        assert_eq!(measure_with(page, serde_json::json!({})).expect("fine").cost, 2 + 100 * 2);
        assert_eq!(measure_with(page, serde_json::json!({ "n": 3 })).expect("fine").cost, 2 + 3 * 2);
        let ids: Vec<String> = (0..400).map(|i| format!("\"u{i}\"")).collect();
        let by_default = format!("query($ids: [ID!]! = [{}]) {{ users(ids: $ids) {{ id }} }}", ids.join(","));
        assert_eq!(measure_with(&by_default, serde_json::json!({})).expect("fine").cost, 401);
        // Two operations giving one variable different defaults: the larger bounds both.
        let two = "query A($n: Int = 2) { kycApplications(first: $n) { edges { node { id } } } }             query B($n: Int = 30) { kycApplications(first: $n) { edges { node { id } } } }";
        assert_eq!(measure_with(two, serde_json::json!({})).expect("fine").cost, 2 + 30 * 2);
    }

    #[test]
    fn a_fragment_bomb_is_costed_without_expanding_it() {
        // The shape of the issue's bomb: 10 aliases per level, 6 levels, under the depth limit.
        let mut query = String::from("{ me { ...U0 } }\n");
        for level in 0..6 {
            let spreads: String =
                (0..10).map(|i| format!(" a{i}: kycApplications {{ user {{ ...U{} }} }}", level + 1)).collect();
            query.push_str(&format!("fragment U{level} on User {{{spreads} }}\n"));
        }
        query.push_str("fragment U6 on User { id }\n");
        let mut relaxed = limits();
        relaxed.max_aliases = 1000;
        let doc = async_graphql::parser::parse_query(&query).expect("parses");
        let refused = analyze(&doc, &Variables::default(), &Schema, &relaxed).expect_err("refused");
        assert_eq!(refused.code, ErrorCode::CostLimitExceeded, "{refused:?}");
    }

    #[test]
    fn aliases_root_fields_depth_and_directives_are_bounded() {
        let aliased: String = (0..31).map(|i| format!(" a{i}: me {{ id }}")).collect();
        assert_eq!(measure(&format!("{{{aliased} }}")).expect_err("refused").code, ErrorCode::AliasLimitExceeded);
        let roots: String = (0..21).map(|_| " me { id }").collect();
        assert_eq!(measure(&format!("{{{roots} }}")).expect_err("refused").code, ErrorCode::RootFieldLimitExceeded);
        let deep = format!("{{ me {{ {}id{} }} }}", "kycApplications { user { ".repeat(7), " } }".repeat(7));
        assert_eq!(measure(&deep).expect_err("refused").code, ErrorCode::DepthLimitExceeded);
        let directives: String = (0..100_000).map(|_| " @skip(if: false)").collect();
        assert_eq!(
            measure(&format!("{{ me {{ id{directives} }} }}")).expect_err("refused").code,
            ErrorCode::DirectiveLimitExceeded
        );
        let padding = "x".repeat(70_000);
        assert_eq!(
            measure(&format!("{{ me {{ id }} }} # {padding}")).expect_err("refused").code,
            ErrorCode::QueryTooLarge
        );
        assert_eq!(
            measure(
                "{ me { id @skip(if: false) @include(if: true) @skip(if: false) @skip(if: false) @skip(if: false) } }"
            )
            .expect_err("refused")
            .code,
            ErrorCode::DirectiveLimitExceeded
        );
        // An @ in a string or a comment is no directive.
        assert!(prescan("{ me { id } } # @@@@\n", &limits()).is_ok());
        let nested = format!("{{ me(x: {}{}) {{ id }} }}", "[".repeat(100), "]".repeat(100));
        assert_eq!(prescan(&nested, &limits()).expect_err("refused").code, ErrorCode::DepthLimitExceeded);
    }
}
