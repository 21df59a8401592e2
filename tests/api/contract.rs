//! Contract tests: the providers' own example payloads (`tests/fixtures/seeds/`, from their documentation) read with
//! the clients' wire models, which the sandboxes do not share, every field the gateway uses checked for its value (a
//! misspelt optional field would otherwise parse as absent).

use std::collections::BTreeMap;

use kyc_gateway::providers::fractal::models::{StatusCountsWire, UserInfo, UserVerificationWire};
use kyc_gateway::providers::ident::models::KycApplicationWire;
use kyc_gateway::providers::sila::models::VerificationsResponse;
use kyc_gateway::providers::sumsub::models::WebhookPayload;
use kyc_gateway::providers::veriff::models::DecisionResponse;
use serde::de::DeserializeOwned;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Walks `text` keeping strings whole and handing every character outside a string to `outside`, which may skip
/// ahead by answering how many characters it consumed (0 keeps the character).
fn outside_strings(text: &str, mut outside: impl FnMut(&[char], usize) -> usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut in_string) = (0, false);
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match outside(&chars, i) {
            0 => {
                in_string = c == '"';
                out.push(c);
                i += 1;
            }
            skipped => i += skipped,
        }
    }
    out
}

/// The documentation's examples are JSON with JavaScript comments and trailing commas: both go, outside strings.
fn lenient_json(text: &str) -> String {
    let uncommented = outside_strings(text, |chars, i| match (chars[i], chars.get(i + 1)) {
        ('/', Some('/')) => chars[i..].iter().take_while(|c| **c != '\n').count(),
        ('/', Some('*')) => {
            let end = (i + 2..chars.len().saturating_sub(1)).find(|&k| chars[k] == '*' && chars[k + 1] == '/');
            end.map_or(chars.len() - i, |k| k + 2 - i)
        }
        _ => 0,
    });
    outside_strings(&uncommented, |chars, i| {
        let trailing = chars[i] == ',' && matches!(chars[i + 1..].iter().find(|c| !c.is_whitespace()), Some('}' | ']'));
        usize::from(trailing)
    })
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    let text = lenient_json(&fixture(name));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} does not fit the client's model: {e}\n{text}"))
}

#[test]
fn the_lenient_reader_keeps_strings_whole() {
    let text = lenient_json(r#"{ "url": "https://a.b/c", /* note */ "list": [1, 2,], } // end"#);
    assert_eq!(text.replace(' ', ""), r#"{"url":"https://a.b/c","list":[1,2]}"#);
}

#[test]
fn fractals_first_users_me_example_fits_the_client_model() {
    let info: UserInfo = parse("fractal_users_me_1.txt");
    assert_eq!(info.uid.as_deref(), Some("b76ab44d-b71e-4d19-b6f9-f6e88cd73946"));
    let emails = info.emails.expect("emails");
    assert_eq!(emails[0].source_type.as_deref(), Some("registration"));
    assert_eq!(info.phones.expect("phones, under the example's `phones:` key")[0].number, "+44000000000");
    let cases = info.verification_cases.expect("verification cases");
    let levels: Vec<&str> = cases.iter().map(|c| c.level.as_str()).collect();
    assert_eq!(levels, ["plus+selfie", "basic+liveness", "basic+liveness+wallet-eth"]);
    assert_eq!(cases[0].status.as_deref(), Some("pending"));
    assert!(cases[2].details.as_ref().is_some_and(|d| d.contains_key("files")));
}

#[test]
fn fractals_second_users_me_example_fits_the_client_model() {
    let info: UserInfo = parse("fractal_users_me_2.txt");
    let wallets = info.wallets.expect("wallets");
    assert_eq!((wallets[0].currency.as_str(), wallets[0].address.as_str()), ("eth", "0x2003"));
    let cases = info.verification_cases.expect("verification cases");
    let plus = cases[0].details.as_ref().expect("plus details");
    assert_eq!(plus["full_name"], "David Muller");
    assert_eq!(plus["identification_document_number"], "123456789");
    assert_eq!(cases[0].status.as_deref(), Some("approved"));
    assert!(cases[1].details.as_ref().is_some_and(|d| d.contains_key("identification_document_selfie_file")));
}

#[test]
fn fractals_statistics_examples_fit_the_client_model() {
    let total: StatusCountsWire = parse("fractal_stats_total.txt");
    assert_eq!((total["approved"], total["contacted"], total["rejected"], total["pending"]), (55, 4, 10, 7));
    let countries: BTreeMap<String, StatusCountsWire> = parse("fractal_stats_country.txt");
    assert_eq!(countries["US"]["pending"], 3);
    assert_eq!(countries["DK"].get("rejected"), None, "zero counts are omitted");
    let users: Vec<UserVerificationWire> = parse("fractal_stats_users.txt");
    assert_eq!(users.len(), 2);
    assert_eq!((users[1].level.as_str(), users[1].credential.as_str()), ("light+selfie+wallet", "pending"));
    assert_eq!(users[0].user_id, "320bfdaa-213e-41fb-8d77-ed98c415f01e");
}

#[test]
fn idents_example_records_fit_the_client_model() {
    let list: Vec<KycApplicationWire> = parse("ident_list.txt");
    let statuses: Vec<&str> = list.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "remediate", "accepted"]);
    assert_eq!(list[0].user_id.as_deref(), Some("47069619-2035-4193-bdd0-af4d5096b649"));
    assert_eq!((list[1].provider.as_str(), list[1].identifier.as_deref()), ("vouched", Some("OsccQPWf")));
    assert_eq!(list[0].kind, "kyc");
    assert!(list[0].description.as_deref().is_some_and(|d| d.contains("Social Security")));
    let updated: KycApplicationWire = parse("ident_updated.txt");
    assert_eq!((updated.name.as_deref(), updated.status.as_str()), (Some("Truong Tri Tung"), "accepted"));
    let retrieved: KycApplicationWire = parse("ident_retrieved.txt");
    assert!(retrieved.params.as_ref().is_some_and(|p| p["params"]["first_name"] == "Janice"));
    let representation = retrieved.provider_representation.expect("provider_representation");
    assert_eq!(representation["errors"].as_array().map(Vec::len), Some(5));
    assert_eq!(retrieved.created_at, "2019-09-15T02:42:00.743047-04:00");
}

#[test]
fn sumsubs_webhook_examples_fit_the_client_model() {
    let red: WebhookPayload = parse("sumsub_webhook_red.txt");
    assert_eq!((red.kind.as_str(), red.applicant_id.as_str()), ("applicantReviewed", "5cb744200a975a67ed1798a4"));
    assert_eq!(red.external_user_id.as_deref(), Some("externalUserId"));
    assert_eq!(red.level_name.as_deref(), Some("basic-kyc-level"));
    assert_eq!(red.review_status.as_deref(), Some("completed"));
    assert_eq!(red.created_at_ms.as_deref(), Some("2020-02-21 13:23:19.001"));
    let result = red.review_result.expect("review result");
    assert_eq!(result.review_answer.as_deref(), Some("RED"));
    assert_eq!(result.review_reject_type.as_deref(), Some("FINAL"));
    assert_eq!(result.reject_labels, ["UNSATISFACTORY_PHOTOS", "GRAPHIC_EDITOR", "FORGERY"]);
    assert_eq!(result.client_comment.as_deref(), Some(" Suspected fraudulent account."));
    assert!(result.moderation_comment.is_some());
    let green: WebhookPayload = parse("sumsub_webhook_green.txt");
    assert_eq!(green.review_result.expect("review result").review_answer.as_deref(), Some("GREEN"));
    assert_eq!(green.correlation_id.as_deref(), Some("req-a260b669-4f14-4bb5-a4c5-ac0218acb9a4"));
}

#[test]
fn silas_get_verifications_shape_fits_the_client_model() {
    // The documentation shows the shape with placeholders for the values (and Python's `True`, and a period where a
    // comma belongs); only the values are filled in, every key stays as documented.
    let text = fixture("sila_get_verifications.txt")
        .replace("True", "true")
        .replace("<uuid of KYC Flow>", "\"5d9b9c3e-2f1a-4c11-9e51-1b7c1f3a0a01\"")
        .replace("<uuid>", "\"0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9\"")
        .replace("<name of verification status>.", "\"passed\",")
        .replace("<timestamp of /kyc call>", "1753312417");
    let answer: VerificationsResponse =
        serde_json::from_str(&lenient_json(&text)).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(answer.success);
    let v = &answer.verifications[0];
    assert_eq!(v.verification_uuid, "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9");
    assert_eq!(v.flow, "5d9b9c3e-2f1a-4c11-9e51-1b7c1f3a0a01");
    assert_eq!((v.verification_status.as_str(), v.requested_at), ("passed", 1_753_312_417));
}

/// Both Veriff examples carry the same approved decision; what the client reads of it.
fn assert_veriffs_example_decision(answer: &DecisionResponse) {
    assert_eq!(answer.status, "success");
    let v = answer.verification.as_ref().expect("a decision");
    assert_eq!(
        (v.id.as_str(), v.status.as_str(), v.code),
        ("12df6045-3846-3e45-946a-14fa6136d78b", "approved", Some(9001))
    );
    assert_eq!((v.reason.as_deref(), v.reason_code.as_deref()), (None, None));
    assert_eq!(v.vendor_data.as_deref(), Some("12345678"));
    assert_eq!(v.decision_time.as_deref(), Some("2019-11-06T07:18:36.916Z"));
    assert_eq!(v.acceptance_time.as_deref(), Some("2019-11-06T07:15:27.000Z"));
    let person = v.person.as_ref().expect("person");
    assert_eq!((person.first_name.as_deref(), person.last_name.as_deref()), (Some("SARAH"), Some("MORGAN")));
    assert_eq!(
        (person.date_of_birth.as_deref(), person.place_of_birth.as_deref()),
        (Some("1967-03-30"), Some("MADRID"))
    );
    assert_eq!(person.id_number, None);
    let document = v.document.as_ref().expect("document");
    assert_eq!(
        (document.kind.as_deref(), document.number.as_deref()),
        (Some("DRIVERS_LICENSE"), Some("MORGA753116SM9IJ"))
    );
    assert_eq!((document.country.as_deref(), document.valid_from.as_deref()), (Some("GB"), None));
    assert_eq!(document.valid_until.as_deref(), Some("2022-04-20"));
    assert_eq!(v.risk_labels[0].label, "document_integration_level_crosslinked_with_fraud");
    assert_eq!(answer.technical_data.as_ref().and_then(|t| t.ip.as_deref()), Some("186.153.67.122"));
}

#[test]
fn veriffs_decision_webhook_example_fits_the_client_model() {
    let webhook: DecisionResponse = parse("veriff_decision_webhook.txt");
    assert_veriffs_example_decision(&webhook);
}

#[test]
fn veriffs_decision_endpoint_example_fits_the_client_model() {
    let answer: DecisionResponse = parse("veriff_decision.txt");
    assert_veriffs_example_decision(&answer);
}
