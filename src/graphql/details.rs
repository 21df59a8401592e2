//! `VerificationDetails`: every field of the details table, each behind the details rule, generated from
//! [`crate::domain::details::with_details_fields`] so that the GraphQL fields, the scope rule's data and the sandbox
//! population come from one list.

use std::sync::Arc;

use async_graphql::{Context, Object, Result};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::errors::unauthorized;
use super::principal;
use crate::authz::rules;
use kyc_vocabulary::with_details_fields;

/// The validated data of one verification case. Each field needs `verification.X.details:read` for an item X that
/// the field belongs to and the case's level includes; otherwise it is null with an `UNAUTHORIZED_FIELD_OR_TYPE` error.
pub struct VerificationDetails {
    case_items: Arc<Vec<String>>,
    values: Arc<Map<String, Value>>,
}

impl VerificationDetails {
    pub fn new(case_items: Arc<Vec<String>>, values: Arc<Map<String, Value>>) -> Self {
        VerificationDetails { case_items, values }
    }

    fn reveal<T: DeserializeOwned>(&self, ctx: &Context<'_>, name: &str, field_items: &[&str]) -> Result<Option<T>> {
        rules::details_field(principal(ctx).scopes(), field_items, &self.case_items).map_err(unauthorized)?;
        Ok(self.values.get(name).and_then(|v| serde_json::from_value(v.clone()).ok()))
    }
}

macro_rules! details_object {
    ($( $name:ident : $ty:ty = $fmt:ident $( ( $($choice:ident),+ ) )? [$($item:ident),+] $restr:ident $doc:literal; )*) => {
        #[Object]
        impl VerificationDetails {
            $(
                #[doc = $doc]
                async fn $name(&self, ctx: &Context<'_>) -> Result<Option<$ty>> {
                    self.reveal(ctx, stringify!($name), &[$(stringify!($item)),+])
                }
            )*
        }
    };
}
with_details_fields!(details_object);
