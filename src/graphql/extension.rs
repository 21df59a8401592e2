//! The error policy of every request, in one place:
//!
//! - an error on a nullable field makes that field `null` and is reported with its path. async-graphql 7 instead
//!   leaves the failed field out of its object, and turns an object whose every field failed into `null`, so a denied
//!   `User.id` would wipe the whole user. Guarded fields are nullable precisely so a denial never does that.
//! - every error carries a stable `extensions.code`, including those async-graphql raises itself (parse, validation,
//!   argument coercion), so clients branch on codes and never on message text.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextResolve, NextValidation,
    ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};

use super::errors::{BAD_USER_INPUT, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, INTERNAL_SERVER_ERROR};

/// How async-graphql's own messages about argument and variable values begin (it gives them no code or kind).
const INPUT_ERROR_PREFIXES: [&str; 3] = ["Failed to parse", "Invalid value", "Variable "];

/// Installs [`ErrorPolicyExtension`] on every request.
pub struct ErrorPolicy;

impl ExtensionFactory for ErrorPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorPolicyExtension::default())
    }
}

/// One request's error policy; holds the errors of fields it resolved to `null`.
#[derive(Default)]
pub struct ErrorPolicyExtension {
    nulled: Mutex<Vec<ServerError>>,
}

/// `BAD_USER_INPUT` for async-graphql's complaints about argument and variable values, else `otherwise`.
fn input_or(error: &ServerError, otherwise: &'static str) -> &'static str {
    if INPUT_ERROR_PREFIXES.iter().any(|p| error.message.starts_with(p)) {
        BAD_USER_INPUT
    } else {
        otherwise
    }
}

fn has_code(error: &ServerError) -> bool {
    error.extensions.as_ref().is_some_and(|e| e.get("code").is_some())
}

fn with_code(mut error: ServerError, code: &str) -> ServerError {
    if !has_code(&error) {
        error.extensions.get_or_insert_with(Default::default).set("code", Value::from(code));
    }
    error
}

#[async_trait::async_trait]
impl Extension for ErrorPolicyExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| with_code(e, GRAPHQL_PARSE_FAILED))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let code = input_or(&e, GRAPHQL_VALIDATION_FAILED);
                    with_code(e, code)
                })
                .collect()
        })
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let nullable = !info.return_type.ends_with('!');
        match next.run(ctx, info).await {
            Err(error) if nullable => {
                self.nulled.lock().expect("error list poisoned").push(error);
                Ok(Some(Value::Null))
            }
            other => other,
        }
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let nulled = std::mem::take(&mut *self.nulled.lock().expect("error list poisoned"));
        let errors = nulled.into_iter().chain(std::mem::take(&mut response.errors));
        response.errors = errors
            .map(|e| {
                // What is left without a code comes from async-graphql's argument and variable coercion, or is a bug.
                let code = input_or(&e, INTERNAL_SERVER_ERROR);
                with_code(e, code)
            })
            .collect();
        response
    }
}
