//! Static field requirements, declared once: the `requires_scopes` attribute on a resolver, printed into the SDL as
//! `@requiresScopes`. [`Declared::from_sdl`] reads them back from the printed SDL and the GraphQL layer checks each
//! field against them before its resolver runs: no second list to keep in step.

use std::collections::HashMap;

use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
use async_graphql::Value as ConstValue;

use super::Denial;
use crate::auth::Scopes;

/// One field's requirement: any one of the alternatives, all of whose scopes are needed (Apollo's `requiredScopes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Alternatives; each is a set of scopes needed together.
    pub any_of: Vec<Vec<String>>,
}

impl Requirement {
    /// Passes when the scopes satisfy one alternative.
    pub fn check(&self, scopes: &Scopes) -> Result<(), Denial> {
        if self.any_of.iter().any(|all| all.iter().all(|s| scopes.has(s))) {
            Ok(())
        } else {
            Err(Denial::new(self.any_of.clone()))
        }
    }
}

/// Every `@requiresScopes` of a schema, by type and field.
#[derive(Debug, Default, Clone)]
pub struct Declared {
    by_type: HashMap<String, HashMap<String, Requirement>>,
    /// The names of the fields whose requirement names each scope.
    fields_of: HashMap<String, Vec<String>>,
}

/// `@requiresScopes(scopes: [["a", "b"], ["c"]])` -> its alternatives; `None` when the argument is not of that shape.
fn alternatives(value: &ConstValue) -> Option<Vec<Vec<String>>> {
    let ConstValue::List(outer) = value else { return None };
    outer
        .iter()
        .map(|inner| match inner {
            ConstValue::List(all) => all
                .iter()
                .map(|s| match s {
                    ConstValue::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        })
        .collect()
}

impl Declared {
    /// Reads the requirements out of an SDL text. Panics on an SDL the server did not print: the input is the
    /// server's own schema, so a parse failure is a bug, caught by every test that builds the schema.
    pub fn from_sdl(sdl: &str) -> Self {
        let document = async_graphql::parser::parse_schema(sdl).expect("the server's own SDL parses");
        let mut by_type: HashMap<String, HashMap<String, Requirement>> = HashMap::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let TypeKind::Object(object) = &ty.node.kind else { continue };
            for field in &object.fields {
                let declared = field.node.directives.iter().find(|d| d.node.name.node == "requiresScopes");
                let Some(directive) = declared else { continue };
                let scopes = directive.node.arguments.iter().find(|(name, _)| name.node == "scopes");
                let any_of = scopes
                    .and_then(|(_, value)| alternatives(&value.node))
                    .expect("@requiresScopes takes scopes: [[String!]!]!");
                by_type
                    .entry(ty.node.name.node.to_string())
                    .or_default()
                    .insert(field.node.name.node.to_string(), Requirement { any_of });
            }
        }
        let mut fields_of: HashMap<String, Vec<String>> = HashMap::new();
        for (field, requirement) in by_type.values().flat_map(|fields| fields.iter()) {
            for scope in requirement.any_of.iter().flatten() {
                let names = fields_of.entry(scope.clone()).or_default();
                if !names.contains(field) {
                    names.push(field.clone());
                }
            }
        }
        Declared { by_type, fields_of }
    }

    /// The names of the fields (of any type) whose requirement names `scope`; `None` when no field's does.
    pub fn fields_requiring(&self, scope: &str) -> Option<&[String]> {
        self.fields_of.get(scope).map(Vec::as_slice)
    }

    /// The requirement of `type_name.field`, if it declares one.
    pub fn get(&self, type_name: &str, field: &str) -> Option<&Requirement> {
        self.by_type.get(type_name)?.get(field)
    }

    /// Every declared field as `(type, field, requirement)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Requirement)> {
        self.by_type.iter().flat_map(|(ty, fields)| fields.iter().map(move |(f, r)| (ty.as_str(), f.as_str(), r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = r#"
        type Query {
            plain: Int
            one: Int @requiresScopes(scopes: [["a"]])
            both: Int @requiresScopes(scopes: [["a", "b"]])
            either: Int @requiresScopes(scopes: [["a"], ["c"]])
        }
    "#;

    #[test]
    fn requirements_are_read_from_the_sdl_and_checked_as_any_of_all_of() {
        let declared = Declared::from_sdl(SDL);
        assert!(declared.get("Query", "plain").is_none());
        assert_eq!(declared.iter().count(), 3);
        let a = Scopes::parse("a");
        assert!(declared.get("Query", "one").expect("declared").check(&a).is_ok());
        let denial = declared.get("Query", "both").expect("declared").check(&a).expect_err("needs b too");
        assert_eq!(denial.required, [["a", "b"]]);
        assert!(declared.get("Query", "either").expect("declared").check(&Scopes::parse("c")).is_ok());
        assert!(declared.get("Query", "either").expect("declared").check(&Scopes::parse("b")).is_err());
        let mut a = declared.fields_requiring("a").expect("declared").to_vec();
        a.sort();
        assert_eq!(a, ["both", "either", "one"]);
        assert_eq!(declared.fields_requiring("c"), Some(&["either".to_owned()][..]));
        assert_eq!(declared.fields_requiring("d"), None);
    }
}
