//! Stage 4, variables: coercing variable values to their declared types before validation (the GraphQL spec's
//! "CoerceVariableValues", October 2021 §6.1.2), so a bad value is `BAD_USER_INPUT` and a bad document
//! `GRAPHQL_VALIDATION_FAILED`. Messages never repeat the value: it may be personal data.

use async_graphql::parser::types::VariableDefinition;
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Pos, Positioned, ServerError, Value as ConstValue, Variables};

/// One problem of the variable `name`: what was expected, and where in its value.
fn problem(name: &str, expected: &str, pos: Pos) -> ServerError {
    ServerError::new(format!("Variable \"${name}\" got an invalid value: expected {expected}"), Some(pos))
}

/// Checks `value` against the type named `ty` (`[ID!]!` syntax); `None` when it fits, else what was expected where
/// (`at` is the path inside the variable, like `$input.params.email`).
fn check(registry: &Registry, ty: &str, value: &ConstValue, at: &str) -> Option<String> {
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => match value {
            ConstValue::Null => Some(format!("a non-null \"{inner}\" at {at}")),
            _ => check(registry, inner, value, at),
        },
        MetaTypeName::List(inner) => match value {
            ConstValue::Null => None,
            // Input coercion accepts a single value where a list is expected.
            ConstValue::List(items) => {
                items.iter().enumerate().find_map(|(i, item)| check(registry, inner, item, &format!("{at}[{i}]")))
            }
            single => check(registry, inner, single, at),
        },
        MetaTypeName::Named(name) => {
            if matches!(value, ConstValue::Null) {
                return None;
            }
            // An unknown or output type is validation's to report.
            match registry.types.get(name)? {
                MetaType::Scalar { is_valid: Some(is_valid), .. } => {
                    (!is_valid(value)).then(|| format!("type \"{name}\" at {at}"))
                }
                MetaType::Enum { enum_values, .. } => match value {
                    ConstValue::Enum(word) if enum_values.contains_key(word.as_str()) => None,
                    ConstValue::String(word) if enum_values.contains_key(word.as_str()) => None,
                    _ => Some(format!("one of the values of \"{name}\" at {at}")),
                },
                MetaType::InputObject { input_fields, .. } => {
                    let ConstValue::Object(fields) = value else {
                        return Some(format!("an object of type \"{name}\" at {at}"));
                    };
                    if let Some(unknown) = fields.keys().find(|k| !input_fields.contains_key(k.as_str())) {
                        return Some(format!("no field \"{unknown}\" at {at} (type \"{name}\")"));
                    }
                    input_fields.values().find_map(|field| {
                        let nested = format!("{at}.{}", field.name);
                        match fields.get(field.name.as_str()) {
                            Some(v) => check(registry, &field.ty, v, &nested),
                            None if field.default_value.is_none() && field.ty.ends_with('!') => {
                                Some(format!("a value for the required field \"{nested}\""))
                            }
                            None => None,
                        }
                    })
                }
                _ => None,
            }
        }
    }
}

/// The coercion errors of `variables` against the operation's `definitions`, each coded by the caller.
pub fn coerce(
    registry: &Registry,
    definitions: &[Positioned<VariableDefinition>],
    variables: &Variables,
) -> Vec<ServerError> {
    let mut errors = Vec::new();
    for definition in definitions {
        let name = definition.node.name.node.as_str();
        let ty = definition.node.var_type.node.to_string();
        let at = format!("${name}");
        match variables.get(name) {
            None if definition.node.default_value.is_none() && !definition.node.var_type.node.nullable => {
                errors.push(ServerError::new(
                    format!("Variable \"{at}\" of required type \"{ty}\" was not provided"),
                    Some(definition.pos),
                ));
            }
            None => {}
            Some(value) => {
                if let Some(expected) = check(registry, &ty, value, &at) {
                    errors.push(problem(&at, &expected, definition.pos));
                }
            }
        }
    }
    errors
}
