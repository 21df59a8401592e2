//! The rules that depend on the data or the arguments, not only on the field: row level, case visibility, the
//! details table, wallet currencies, KYC applications, `kycState`. Static field requirements are in `declared.rs`.

use super::scopes::{details_scope, verification_scope, KYC_APPLICATION_READ, UID_READ, USERS_READ, WALLET_READ};
use super::{Declared, Denial};
use crate::auth::{Principal, Scopes};
use crate::domain::events::EventKind;
use crate::domain::{UserId, WalletCurrency};

/// The user `me` speaks for: only a user token has one.
pub fn me(p: &Principal) -> Option<&UserId> {
    p.user_id()
}

/// Whether the token may read users other than its own subject.
pub fn reads_other_users(p: &Principal) -> bool {
    p.has(USERS_READ)
}

/// Row level, first of all: a token reads its own user, and other users only with `client.users:read`. The denial is
/// the same whether or not the other user exists.
pub fn read_user(p: &Principal, user_id: &str) -> Result<(), Denial> {
    read_users(p).check(user_id)
}

/// Which users a token reads ([`read_user`] decided once for a whole list).
#[derive(Debug, Clone, Copy)]
pub struct UserRows<'a> {
    own: Option<&'a UserId>,
    others: bool,
}

impl UserRows<'_> {
    /// Row level for one id of the list: the same answer as [`read_user`].
    pub fn check(&self, user_id: &str) -> Result<(), Denial> {
        if self.others || self.own.is_some_and(|own| own.as_str() == user_id) {
            Ok(())
        } else {
            Err(Denial::one(USERS_READ))
        }
    }
}

/// The row-level decision for a list of users (`users(ids:)`), taken once.
pub fn read_users(p: &Principal) -> UserRows<'_> {
    UserRows { own: p.user_id(), others: reads_other_users(p) }
}

/// Whose KYC applications a token may list or look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationScope<'a> {
    /// Every application (`client.users:read`).
    All,
    /// Only those of this gateway user (a user token).
    OwnOf(&'a UserId),
    /// None at all (a client token without `client.users:read`).
    Nothing,
}

/// Which applications the token reaches, once `kyc_application:read` (declared on the fields) has passed.
pub fn applications(p: &Principal) -> ApplicationScope<'_> {
    match (reads_other_users(p), p.user_id()) {
        (true, _) => ApplicationScope::All,
        (false, Some(own)) => ApplicationScope::OwnOf(own),
        (false, None) => ApplicationScope::Nothing,
    }
}

/// A case is visible when the token reads every item of its level (`plus+selfie` needs both scopes). Cases the
/// caller may not see are left out of lists, not reported as errors.
pub fn case_visible(scopes: &Scopes, case_items: &[String]) -> bool {
    !case_items.is_empty() && case_items.iter().all(|i| scopes.reads_item(i))
}

/// Whether a caller holding details scopes for `granted` items may see a field of `field_items` on a case whose
/// level holds `case_items`: one item must own the field, be part of the case's level, and be granted.
pub fn field_visible(field_items: &[&str], case_items: &[String], granted: impl Fn(&str) -> bool) -> bool {
    field_items.iter().any(|item| case_items.iter().any(|c| c == item) && granted(item))
}

/// The details rule: a field is visible with `verification.X.details:read` for an item X that the field belongs to
/// AND the case's level includes. A denial names the scopes that would unlock the field on this case, or, if none
/// could, the ones it belongs to.
pub fn details_field(scopes: &Scopes, field_items: &[&str], case_items: &[String]) -> Result<(), Denial> {
    if field_visible(field_items, case_items, |item| scopes.reads_details_of(item)) {
        return Ok(());
    }
    let on_case: Vec<&str> = field_items.iter().copied().filter(|i| case_items.iter().any(|c| c == i)).collect();
    let owners = if on_case.is_empty() { field_items.to_vec() } else { on_case };
    Err(Denial::new(owners.iter().map(|i| vec![details_scope(i)]).collect()))
}

/// Which wallets the token sees, once one of the wallet scopes (declared on the field) has passed: all with
/// `verification.wallet:read`, else those of the currencies it holds `verification.wallet-<currency>:read` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletFilter {
    all: bool,
    currencies: Vec<WalletCurrency>,
}

impl WalletFilter {
    /// Whether a wallet of `currency` may be shown.
    pub fn allows(&self, currency: WalletCurrency) -> bool {
        self.all || self.currencies.contains(&currency)
    }
}

/// The token's wallet filter.
pub fn wallets(p: &Principal) -> WalletFilter {
    let currencies =
        WalletCurrency::ALL.into_iter().filter(|c| p.has(&super::scopes::wallet_currency_scope(c.as_str()))).collect();
    WalletFilter { all: p.has(WALLET_READ), currencies }
}

/// `kycState(level:)` needs `verification.X:read` for every item of the level: the aggregate tells about each.
pub fn kyc_state(scopes: &Scopes, level_items: &[String]) -> Result<(), Denial> {
    if level_items.iter().all(|i| scopes.reads_item(i)) {
        Ok(())
    } else {
        Err(Denial::new(vec![level_items.iter().map(|i| verification_scope(i)).collect()]))
    }
}

/// Whether KYC applications count toward `kycState`: only for callers who may read them.
pub fn applications_count_in_state(p: &Principal) -> bool {
    applications_readable(p)
}

/// Whether the token passes the requirement declared on every applications field (`kyc_application:read`): a list
/// of users' applications is fetched ahead of its fields only then, so a denied field still fetches nothing.
pub fn applications_readable(p: &Principal) -> bool {
    p.has(KYC_APPLICATION_READ)
}

/// An application's `name` and `params` are personal data: they need a details scope of an item the application's
/// type maps to (`kyc` -> `basic` by default), as a verification's details would.
pub fn application_personal_data(scopes: &Scopes, type_items: &[String]) -> Result<(), Denial> {
    if type_items.iter().any(|i| scopes.reads_details_of(i)) {
        Ok(())
    } else {
        Err(Denial::new(type_items.iter().map(|i| vec![details_scope(i)]).collect()))
    }
}

/// A user's access log is theirs alone: only a token of that user reads it (no scope opens anyone else's).
pub fn access_log(p: &Principal, user_id: &str) -> Result<(), Denial> {
    if p.user_id().is_some_and(|own| own.as_str() == user_id) {
        Ok(())
    } else {
        Err(Denial::new(Vec::new()))
    }
}

/// Whose verification changes a subscription follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// One user's.
    User(String),
    /// Every user's (`client.users:read`).
    Everyone,
}

/// Row level for subscriptions, as for queries: a user token watches only itself (no `userId`, or its own), a token
/// with `client.users:read` anyone or, without `userId`, everyone. The denial does not say whether the user exists.
pub fn watch(p: &Principal, user_id: Option<&str>) -> Result<Watch, Denial> {
    match (user_id, reads_other_users(p), p.user_id()) {
        (Some(id), true, _) => Ok(Watch::User(id.to_owned())),
        (None, true, _) => Ok(Watch::Everyone),
        (Some(id), false, Some(own)) if id == own.as_str() => Ok(Watch::User(own.to_string())),
        (None, false, Some(own)) => Ok(Watch::User(own.to_string())),
        _ => Err(Denial::one(USERS_READ)),
    }
}

/// Whether an event about `user_id`'s verification (of a level with `level_items`) may reach the caller: what a
/// query would show. A case's event needs the case visibility rule of `verificationCases` (no
/// `verification.plus:read`, no `plus` events); an application's needs what `kycApplications` needs.
pub fn event_visible(p: &Principal, user_id: &str, kind: EventKind, level_items: &[String]) -> bool {
    if read_user(p, user_id).is_err() {
        return false;
    }
    match kind {
        EventKind::Application => {
            p.has(KYC_APPLICATION_READ)
                && match applications(p) {
                    ApplicationScope::All => true,
                    ApplicationScope::OwnOf(own) => own.as_str() == user_id,
                    ApplicationScope::Nothing => false,
                }
        }
        EventKind::Case => case_visible(p.scopes(), level_items),
    }
}

/// Whether the statistics' per-user rows show the gateway user id.
pub fn stats_user_ids(p: &Principal) -> bool {
    p.has(UID_READ)
}

/// Whether the rules above consult `scope` whatever the document asks: row level, case visibility, details,
/// wallets, applications, the statistics' user ids. A scope a new rule reads belongs here.
fn consulted_by_rules(scope: &str) -> bool {
    scope.starts_with("verification.") || [USERS_READ, UID_READ, KYC_APPLICATION_READ, WALLET_READ].contains(&scope)
}

/// Whether holding `scope` can change the answer to `document` (its text): always for a scope the rules consult or
/// one nothing declares; for one only declared on fields (`@requiresScopes`), when the text names such a field. What
/// the response cache keys answers by (`src/server/responses.rs`).
pub fn scope_can_matter(declared: &Declared, scope: &str, document: &str) -> bool {
    if consulted_by_rules(scope) {
        return true;
    }
    match declared.fields_requiring(scope) {
        None => true,
        Some(fields) => fields.iter().any(|field| names(document, field)),
    }
}

/// Whether `name` occurs in `text` as a whole GraphQL name (a superset of the fields a document selects).
fn names(text: &str, name: &str) -> bool {
    let is_name = |c: Option<char>| c.is_some_and(|c| c == '_' || c.is_ascii_alphanumeric());
    text.match_indices(name)
        .any(|(at, _)| !is_name(text[..at].chars().next_back()) && !is_name(text[at + name.len()..].chars().next()))
}

/// Whether a token may ever read `field` of `type_name`, whatever the data: what introspection shows it. A field of
/// `VerificationDetails` passes its `details_items`; a field whose type is hidden is hidden too (`schema_type`).
pub fn schema_field(p: &Principal, declared: &Declared, type_name: &str, field: &str, details_items: &[&str]) -> bool {
    if declared.get(type_name, field).is_some_and(|requirement| requirement.check(p.scopes()).is_err()) {
        return false;
    }
    match (type_name, field) {
        ("Query", "me") | ("User", "accessLog") => p.user_id().is_some(),
        ("Mutation", "startFractalLink" | "completeFractalLink" | "unlinkFractal") => p.user_id().is_some(),
        ("Query", "user" | "users") | ("Subscription", _) => p.user_id().is_some() || reads_other_users(p),
        ("VerificationDetails", _) => details_items.iter().any(|item| p.scopes().reads_details_of(item)),
        _ => true,
    }
}

/// Whether a token may ever read a value of the type: cases need a case scope, their details a details scope.
pub fn schema_type(p: &Principal, type_name: &str) -> bool {
    match type_name {
        "VerificationCase" => p.scopes().reads_any_item(),
        "VerificationDetails" => p.scopes().reads_any_details(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_these_rules_read_is_one_the_response_cache_keys_answers_by() {
        // The scopes this file can read: what it imports from `scopes`, any it names by a `scopes::` path, and no
        // literal. A new one must be listed here and pass `consulted_by_rules`, or a cached answer could cross a
        // scope line.
        let source = include_str!("rules.rs");
        let source = &source[..source.find("#[cfg(test)]").expect("the tests")];
        assert!(!source.contains("has(\""), "a scope read as a literal: name it in `scopes`");
        let imports = source.lines().find_map(|l| l.strip_prefix("use super::scopes::{")).expect("the imports");
        let mut named: Vec<&str> = imports.trim_end_matches("};").split(", ").collect();
        named.extend(source.match_indices("scopes::").map(|(at, _)| {
            let rest = &source[at + "scopes::".len()..];
            &rest[..rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len())]
        }));
        named.retain(|name| !name.is_empty());
        named.sort_unstable();
        named.dedup();
        let known = [
            ("KYC_APPLICATION_READ", KYC_APPLICATION_READ.to_owned()),
            ("UID_READ", UID_READ.to_owned()),
            ("USERS_READ", USERS_READ.to_owned()),
            ("WALLET_READ", WALLET_READ.to_owned()),
            ("details_scope", details_scope("plus")),
            ("verification_scope", verification_scope("plus")),
            ("wallet_currency_scope", crate::authz::scopes::wallet_currency_scope("eth")),
        ];
        assert_eq!(named, known.iter().map(|(name, _)| *name).collect::<Vec<_>>());
        for (name, scope) in known {
            assert!(consulted_by_rules(&scope), "{name} ({scope}) is read by the rules");
        }
    }

    fn user(id: &str, scopes: &str) -> Principal {
        Principal::User { issuer: "iss".into(), id: UserId::parse(id).expect("an id"), scopes: Scopes::parse(scopes) }
    }

    #[test]
    fn a_user_token_reads_itself_and_a_client_needs_users_read() {
        assert!(read_user(&user("u", ""), "u").is_ok());
        assert_eq!(read_user(&user("u", ""), "v").expect_err("other").required, [[USERS_READ]]);
        assert!(read_user(&user("u", USERS_READ), "v").is_ok());
        let client = Principal::Client { issuer: "iss".into(), name: "c".into(), scopes: Scopes::default() };
        assert_eq!(applications(&client), ApplicationScope::Nothing);
        let u = UserId::parse("u").expect("an id");
        assert_eq!(applications(&user("u", "")), ApplicationScope::OwnOf(&u));
    }

    #[test]
    fn a_details_denial_names_the_scopes_that_would_unlock_the_field_on_this_case() {
        let case: Vec<String> = vec!["plus".into(), "selfie".into()];
        let none = Scopes::default();
        let denial = details_field(&none, &["plus", "basic"], &case).expect_err("denied");
        assert_eq!(denial.required, [["verification.plus.details:read"]]);
        let denial = details_field(&none, &["liveness"], &case).expect_err("denied");
        assert_eq!(denial.required, [["verification.liveness.details:read"]]);
        assert!(details_field(&Scopes::parse("verification.plus.details:read"), &["plus"], &case).is_ok());
    }

    #[test]
    fn a_user_watches_only_itself_and_sees_only_the_levels_it_reads() {
        let me = user("u", "verification.basic:read");
        assert_eq!(watch(&me, None), Ok(Watch::User("u".into())));
        assert_eq!(watch(&me, Some("u")), Ok(Watch::User("u".into())));
        assert_eq!(watch(&me, Some("v")).expect_err("other").required, [[USERS_READ]]);
        let client = Principal::Client { issuer: "iss".into(), name: "c".into(), scopes: Scopes::default() };
        assert!(watch(&client, None).is_err());
        assert_eq!(watch(&user("s", USERS_READ), None), Ok(Watch::Everyone));
        let basic = vec!["basic".to_owned()];
        let plus = vec!["plus".to_owned(), "selfie".to_owned()];
        assert!(event_visible(&me, "u", EventKind::Case, &basic));
        assert!(!event_visible(&me, "u", EventKind::Case, &plus), "no plus scope, no plus events");
        assert!(!event_visible(&me, "v", EventKind::Case, &basic), "another user's");
        assert!(!event_visible(&me, "u", EventKind::Application, &basic), "applications need kyc_application:read");
        assert!(event_visible(&user("u", KYC_APPLICATION_READ), "u", EventKind::Application, &basic));
    }

    #[test]
    fn a_field_needs_an_item_shared_by_field_case_and_grant() {
        let case: Vec<String> = vec!["plus".into(), "selfie".into()];
        assert!(field_visible(&["plus", "basic"], &case, |i| i == "plus"));
        assert!(!field_visible(&["plus", "basic"], &case, |i| i == "basic"));
        assert!(!field_visible(&["selfie"], &["plus".to_string()], |_| true));
    }

    #[test]
    fn a_currency_scope_shows_only_its_currency() {
        let filter = wallets(&user("u", "verification.wallet-eth:read"));
        assert!(filter.allows(WalletCurrency::Eth) && !filter.allows(WalletCurrency::Btc));
        assert!(wallets(&user("u", WALLET_READ)).allows(WalletCurrency::Btc));
    }

    #[test]
    fn a_scope_matters_to_a_document_when_a_rule_reads_it_or_the_document_names_a_field_that_needs_it() {
        let declared = Declared::from_sdl(
            r#"type Query { me: User auditEvents: Int @requiresScopes(scopes: [["audit:read"]]) }
               type User { id: ID emails: [String] @requiresScopes(scopes: [["contact:read"]]) }"#,
        );
        let me = "query { me { id emails { address } } }";
        assert!(scope_can_matter(&declared, "contact:read", me), "emails needs it");
        assert!(!scope_can_matter(&declared, "contact:read", "query { me { id kycState } }"));
        assert!(!scope_can_matter(&declared, "contact:read", "query { me { id myemails: id } }"), "a whole name only");
        assert!(!scope_can_matter(&declared, "audit:read", me));
        for rule_scope in [USERS_READ, UID_READ, KYC_APPLICATION_READ, WALLET_READ, "verification.plus.details:read"] {
            assert!(scope_can_matter(&declared, rule_scope, "query { __typename }"), "{rule_scope}");
        }
        assert!(scope_can_matter(&declared, "openid", "query { __typename }"), "a scope nothing declares is kept");
    }
}
