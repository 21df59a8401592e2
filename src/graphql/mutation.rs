//! The mutation root: creating KYC applications and settling their status, validated before anything is sent; and
//! linking an account (`linking.rs`).

use async_graphql::{Context, Error, ErrorExtensions, InputObject, Object, Result, Value, ID};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::application::KycApplicationObject;
use super::errors::{self, coded, unauthorized, ErrorCode};
use super::{principal, services};
use crate::authz::rules;
use crate::domain::application::{ApplicationParams, KycApplicationStatus, KycApplicationType, NewKycApplication};
use crate::domain::UserId;

/// Every mutation: one root made of the application mutations and the linking ones.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(ApplicationMutation, super::linking::LinkingMutation);

#[derive(Default)]
pub struct ApplicationMutation;

#[derive(InputObject)]
pub struct CreateKycApplicationInput {
    /// The user the application is about. A user token may leave it out (itself); a client token must name one.
    pub user_id: Option<ID>,
    /// `vouched` (the default) or `identitymind`.
    pub provider: Option<String>,
    /// `kyc` (the default) or `kyb`.
    #[graphql(name = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub params: Option<ApplicationParams>,
}

/// Field-level problems of an input: `(field path, message)`. Messages never repeat the value.
type Problems = Vec<(&'static str, String)>;

fn invalid_input(problems: Problems) -> Error {
    let summary: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    Error::new(format!("Invalid input: {}", summary.join("; "))).extend_with(|_, e| {
        e.set("code", ErrorCode::BadUserInput.as_str());
        let fields = problems
            .iter()
            .map(|(field, message)| {
                let mut m = async_graphql::indexmap::IndexMap::new();
                m.insert(async_graphql::Name::new("field"), Value::from(*field));
                m.insert(async_graphql::Name::new("message"), Value::from(message.as_str()));
                Value::Object(m)
            })
            .collect();
        e.set("fields", Value::List(fields));
    })
}

fn check_text(problems: &mut Problems, field: &'static str, value: &Option<String>, max: usize) {
    if let Some(v) = value {
        if v.trim().is_empty() {
            problems.push((field, "must not be blank".into()));
        } else if v.chars().count() > max {
            problems.push((field, format!("must be at most {max} characters")));
        }
    }
}

/// Checks everything the provider and its third parties (`verifiers`) would refuse, and the gateway's own limits.
fn validate(input: &CreateKycApplicationInput, verifiers: &[&str]) -> Problems {
    let mut problems = Problems::new();
    if let Some(p) = &input.provider {
        if !verifiers.contains(&p.as_str()) {
            problems.push(("provider", format!("must be {}", verifiers.join(" or "))));
        }
    }
    if let Some(k) = &input.kind {
        if KycApplicationType::parse(k).is_none() {
            problems.push(("type", "must be kyc or kyb".into()));
        }
    }
    check_text(&mut problems, "name", &input.name, 200);
    check_text(&mut problems, "description", &input.description, 2000);
    let Some(params) = &input.params else { return problems };
    check_text(&mut problems, "params.firstName", &params.first_name, 100);
    check_text(&mut problems, "params.lastName", &params.last_name, 100);
    check_text(&mut problems, "params.name", &params.name, 200);
    check_text(&mut problems, "params.idNumber", &params.id_number, 64);
    if let Some(dob) = &params.date_of_birth {
        match Date::parse(dob, format_description!("[year]-[month]-[day]")) {
            Err(_) => problems.push(("params.dateOfBirth", "must be a date YYYY-MM-DD".into())),
            Ok(date) if date > OffsetDateTime::now_utc().date() => {
                problems.push(("params.dateOfBirth", "must not be in the future".into()))
            }
            Ok(date) if date.year() < 1900 => problems.push(("params.dateOfBirth", "must be after 1900".into())),
            Ok(_) => {}
        }
    }
    if let Some(email) = &params.email {
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            })
            && !email.contains(char::is_whitespace);
        if !valid {
            problems.push(("params.email", "must be an email address".into()));
        }
    }
    if let Some(ssn) = &params.ssn {
        let chars: Vec<char> = ssn.chars().collect();
        let digits = chars.iter().filter(|c| c.is_ascii_digit()).count();
        let shaped =
            chars.len() == 9 && digits == 9 || chars.len() == 11 && digits == 9 && chars[3] == '-' && chars[6] == '-';
        if !shaped {
            problems.push(("params.ssn", "must be nine digits, as 123-45-6789 or 123456789".into()));
        }
    }
    if let Some(url) = &params.webhook_url {
        if !url.starts_with("https://") || url.len() > 2048 {
            problems.push(("params.webhookUrl", "must be an https:// URL".into()));
        }
    }
    if params.provider_params.as_ref().is_some_and(|p| !p.0.is_object()) {
        problems.push(("params.providerParams", "must be an object".into()));
    }
    problems
}

fn invalid_transition(from: KycApplicationStatus, to: KycApplicationStatus) -> Error {
    let allowed = from.allowed_next();
    let words: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    let message = if words.is_empty() {
        format!("a {} application is final; it cannot become {}", from.as_str(), to.as_str())
    } else {
        format!("a {} application can become {}, not {}", from.as_str(), words.join(" or "), to.as_str())
    };
    Error::new(message).extend_with(|_, e| {
        e.set("code", ErrorCode::InvalidTransition.as_str());
        e.set("from", Value::Enum(async_graphql::Name::new(from.as_str().to_ascii_uppercase())));
        let list =
            allowed.iter().map(|s| Value::Enum(async_graphql::Name::new(s.as_str().to_ascii_uppercase()))).collect();
        e.set("allowed", Value::List(list));
    })
}

#[Object]
impl ApplicationMutation {
    /// Creates a KYC application for a user: the caller's own with a user token, any with
    /// `client.users:read`. Needs `kyc_application:write`. Invalid input is refused field by field before anything
    /// is sent (`extensions.fields`).
    #[graphql(requires_scopes = "kyc_application:write")]
    async fn create_kyc_application(
        &self,
        ctx: &Context<'_>,
        input: CreateKycApplicationInput,
    ) -> Result<KycApplicationObject> {
        let p = principal(ctx);
        let providers = &services(ctx).providers;
        let (provider, source) = providers.set.applications().map_err(errors::missing)?;
        let fail = |e| errors::provider(provider, &e);
        let mut problems = validate(&input, source.verifiers());
        let target = input.user_id.as_ref().map(|id| id.to_string()).or_else(|| p.user_id().map(|u| u.to_string()));
        match &target {
            None => problems.insert(0, ("userId", "is required with a client token".into())),
            Some(id) if crate::domain::ids::check(id).is_err() => problems.insert(0, ("userId", "is not an id".into())),
            Some(_) => {}
        }
        if !problems.is_empty() {
            return Err(invalid_input(problems));
        }
        let user = UserId::trusted(target.expect("checked above"));
        rules::read_user(p, &user).map_err(unauthorized)?;
        let provider_user = source
            .applicant(&user)
            .await
            .map_err(|e| errors::internal("directory", &e))?
            .ok_or_else(|| invalid_input(vec![("userId", "has no applicant identity of its own".into())]))?;
        let new = NewKycApplication {
            provider_user,
            provider: input.provider.unwrap_or_else(|| source.verifiers()[0].to_owned()),
            kind: input.kind.as_deref().and_then(KycApplicationType::parse).unwrap_or(KycApplicationType::Kyc),
            name: input.name,
            description: input.description,
            params: input.params.unwrap_or_default(),
        };
        let created = source.create(&new).await.map_err(fail)?;
        // What every replica holds about the user's applications is stale now.
        providers.changed(&user).await;
        Ok(KycApplicationObject::new(created))
    }

    /// Moves an application to `status` when the transition table allows it (remediation is settled by accepting
    /// or rejecting); otherwise answers `INVALID_TRANSITION` naming the allowed states, and sends nothing. Needs
    /// `kyc_application:write` and `client.users:read`: applicants do not settle their own applications.
    #[graphql(requires_scopes = "kyc_application:write client.users:read")]
    async fn update_kyc_application_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: KycApplicationStatus,
    ) -> Result<KycApplicationObject> {
        let providers = &services(ctx).providers;
        let (provider, source) = providers.set.applications().map_err(errors::missing)?;
        let fail = |e| errors::provider(provider, &e);
        let not_found = || coded("No KYC application has this id", ErrorCode::NotFound);
        // Always the provider's current status, never the cache's: the transition is checked against it.
        let current = source.get(&id).await.map_err(fail)?.ok_or_else(not_found)?;
        let Some(from) = current.status else {
            let message = "The application's current status is unknown to the gateway";
            return Err(coded(message, ErrorCode::InvalidTransition));
        };
        if !from.may_become(status) {
            return Err(invalid_transition(from, status));
        }
        let updated = source.update_status(&id, status).await.map_err(fail)?.ok_or_else(not_found)?;
        // What every replica holds about the applicant is stale now.
        if let Some(applicant) = &updated.user_id {
            let owner = source.user_of_applicant(applicant).await.map_err(|e| errors::internal("directory", &e))?;
            if let Some(user) = owner.or_else(|| UserId::parse(applicant.clone()).ok()) {
                providers.changed(&user).await;
            }
        }
        Ok(KycApplicationObject::new(updated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_fields_are_named_and_valid_input_passes() {
        let input = CreateKycApplicationInput {
            user_id: None,
            provider: Some("acme".into()),
            kind: Some("kyx".into()),
            name: None,
            description: None,
            params: Some(ApplicationParams {
                date_of_birth: Some("1990-02-30".into()),
                email: Some("not-an-email".into()),
                ssn: Some("123é456789".into()),
                webhook_url: Some("http://example.com".into()),
                ..Default::default()
            }),
        };
        const VERIFIERS: [&str; 2] = ["vouched", "identitymind"];
        let fields: Vec<&str> = validate(&input, &VERIFIERS).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["provider", "type", "params.dateOfBirth", "params.email", "params.ssn", "params.webhookUrl"]
        );
        let good = CreateKycApplicationInput {
            user_id: None,
            provider: Some("identitymind".into()),
            kind: Some("kyb".into()),
            name: Some("Acme".into()),
            description: None,
            params: Some(ApplicationParams {
                date_of_birth: Some("1990-02-28".into()),
                email: Some("a@example.com".into()),
                ssn: Some("123-45-6789".into()),
                ..Default::default()
            }),
        };
        assert!(validate(&good, &VERIFIERS).is_empty());
    }
}
