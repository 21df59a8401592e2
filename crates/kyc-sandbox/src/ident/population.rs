//! The sandbox ident's KYC applications: the records of ident's documentation with their ids and contents, plus one generated
//! application for every fifth gateway user, together covering every status.

use serde_json::json;

use super::wire::KycApplicationWire;
use crate::rng::Rng;

/// The application (ident's `application_id`) of most seed records, and the one the gateway's sandbox token is for.
pub const GATEWAY_APPLICATION: &str = "dc4152f7-456f-41ed-96b4-e52b8faa05fd";
/// John Smith's application, in `remediate`.
pub const JOHN_SMITH: &str = "13bd0b24-f0d9-4caa-89ab-259c058877ce";
/// Tim Evans's application, `failed`.
pub const TIM_EVANS: &str = "72258a99-1518-4526-a5fa-043081eee7f0";
/// Janice Way's application, `submitted`, with `provider_representation` errors.
pub const JANICE_WAY: &str = "e494ee10-bbf5-45bb-81aa-7e3561d8c729";
/// The gateway users of the seed records (ident `user_id`s).
pub const SEED_USERS: [&str; 4] = [
    "47069619-2035-4193-bdd0-af4d5096b649",
    "9a253758-197a-4308-8d2d-61cfe9317644",
    "3fceea52-b71c-4b7f-bb88-712046523310",
    "9e15791a-dbf1-4e5e-8c6b-a7253e198b4c",
];

pub const STATUSES: [&str; 7] = ["pending", "submitted", "review", "remediate", "accepted", "rejected", "failed"];

fn record(value: serde_json::Value) -> KycApplicationWire {
    serde_json::from_value(value).expect("the documentation's records fit the wire model")
}

/// Seed 002's records, verbatim.
pub fn seed_records() -> Vec<KycApplicationWire> {
    vec![
        record(
            json!({"id":"72258a99-1518-4526-a5fa-043081eee7f0","created_at":"2019-06-12T02:31:33.613098-04:00","application_id":"bca2348c-442f-4c48-99a4-7b3510385e53","user_id":"47069619-2035-4193-bdd0-af4d5096b649","provider":"identitymind","identifier":null,"type":"kyc","status":"failed","name":"Tim Evans","description":"No national id country specified, and invalid format for US Social Security Number"}),
        ),
        record(
            json!({"id":"13bd0b24-f0d9-4caa-89ab-259c058877ce","created_at":"2019-11-13T03:55:02.687098-05:00","application_id":"dc4152f7-456f-41ed-96b4-e52b8faa05fd","user_id":"9a253758-197a-4308-8d2d-61cfe9317644","provider":"vouched","identifier":"OsccQPWf","type":"kyc","status":"remediate","name":"John Smith","description":null}),
        ),
        record(
            json!({"id":"e40a34d8-5df9-4ab3-be79-b8b34844eb3d","created_at":"2019-11-05T22:23:31.126578-05:00","application_id":"dc4152f7-456f-41ed-96b4-e52b8faa05fd","user_id":"3fceea52-b71c-4b7f-bb88-712046523310","provider":"vouched","identifier":"oRM3YnSy","type":"kyc","status":"accepted","name":"Joe Lubin","description":null}),
        ),
        record(
            json!({"application_id":"dc4152f7-456f-41ed-96b4-e52b8faa05fd","created_at":"2019-11-13T04:24:48.241681-05:00","description":null,"id":"205d1f45-4b45-4d85-a692-8db40d94ab89","identifier":"VS5eRURs","name":"Truong Tri Tung","provider":"vouched","status":"accepted","type":"kyc","user_id":"9a253758-197a-4308-8d2d-61cfe9317644"}),
        ),
        record(
            json!({"id":"e494ee10-bbf5-45bb-81aa-7e3561d8c729","created_at":"2019-09-15T02:42:00.743047-04:00","application_id":"dc4152f7-456f-41ed-96b4-e52b8faa05fd","user_id":"9e15791a-dbf1-4e5e-8c6b-a7253e198b4c","provider":"vouched","identifier":"hDj_HOv","type":"kyc","status":"submitted","description":null,"params":{"params":{"date_of_birth":"06/22/1990","first_name":"Janice","last_name":"Way","id_photo":"","id_photo_back":"","selfie":"","type":"id-verification","webhook_url":null },"type":"id-verification" },"provider_representation":{"errors":[ {"message":"Invalid or unsupported id","suggestion":null,"type":"InvalidIdPhotoError" }, {"message":"Invalid or unsupported selfie","suggestion":null,"type":"InvalidUserPhotoError" }, {"message":"Id and selfie faces do not match","suggestion":null,"type":"FaceMatchError" }, {"message":"Name is below the confidence threshold","suggestion":null,"type":"NameMatchError" }, {"message":"Birth date is below the confidence threshold","suggestion":null,"type":"BirthDateMatchError" } ],"id":"hDj_HOv","request":{"callbackURL":"https://google.com/gdpr","parameters":{"carInsurancePhoto":null,"dob":"06/22/1990","dotPhoto":null,"firstName":"Janice","idPhoto":"","idPhotoBack":null,"lastName":"Way","twicPhoto":null,"userPhoto":"" },"type":"id-verification" },"result":{"confidences":{"backId":null,"faceMatch":0,"id":0.4327,"idMatch":0,"selfie":0.0434 },"country":"US","dob":null,"errors":null,"firstName":null,"id":null,"lastName":null,"state":"WI","success":false,"type":"drivers-license" },"status":"completed","submitted":"2019-09-15T06:42:02+00:00" }}),
        ),
    ]
}

const FIRST: [&str; 6] = ["Maya", "Omar", "Lena", "Paul", "Sara", "Tom"];
const LAST: [&str; 6] = ["Ortiz", "Haddad", "Fischer", "Young", "Nilsen", "Reed"];

fn generated(i: usize, user: &str, rng: &mut Rng) -> KycApplicationWire {
    let status = STATUSES[(i / 5) % STATUSES.len()];
    let provider = if i.is_multiple_of(10) { "vouched" } else { "identitymind" };
    let kyb = i.is_multiple_of(15) && i > 0;
    let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / 6) % LAST.len()]);
    let dob = format!("{:02}/{:02}/{}", 1 + rng.below(12), 1 + rng.below(28), 1950 + rng.below(50));
    let submitted = status != "pending" && status != "failed";
    let identifier = submitted.then(|| rng.hex(8));
    let day = 1 + (i * 7) % 27;
    KycApplicationWire {
        id: rng.uuid(),
        created_at: format!("2024-{:02}-{day:02}T{:02}:{:02}:00.000000-05:00", 1 + (i / 27) % 12, i % 24, i % 60),
        errors: Vec::new(),
        application_id: Some(GATEWAY_APPLICATION.into()),
        user_id: Some(user.into()),
        provider: provider.into(),
        identifier: identifier.clone(),
        kind: if kyb { "kyb" } else { "kyc" }.into(),
        status: status.into(),
        name: Some(if kyb { format!("{last} Holdings") } else { format!("{first} {last}") }),
        description: (status == "failed").then(|| "The provider gave no identifier".into()),
        params: Some(json!({
            "first_name": first, "last_name": last, "date_of_birth": dob, "type": "id-verification",
            "params": { "first_name": first, "last_name": last, "dob": dob, "type": "id-verification" }
        })),
        provider_representation: identifier.map(|id| {
            json!({
                "id": id,
                "status": if status == "submitted" { "active" } else { "completed" },
                "result": { "success": status == "accepted", "confidences": { "id": 0.9, "faceMatch": 0.8 } },
                "errors": if status == "rejected" { json!([{ "type": "FaceMatchError", "message": "Id and selfie faces do not match" }]) } else { json!([]) }
            })
        }),
    }
}

/// The seed records and one application for every fifth gateway user of `users` (the seed person's included).
pub fn generate(users: &[String], seed: u64) -> Vec<KycApplicationWire> {
    let mut rng = Rng::new(seed ^ 0x1de);
    let mut out = seed_records();
    for (i, user) in users.iter().enumerate().filter(|(i, _)| i % 5 == 0) {
        out.push(generated(i, user, &mut rng));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_records_cover_every_status_and_keep_the_seed_records() {
        let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        let records = generate(&users, 3);
        let statuses: HashSet<&str> = records.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses.len(), STATUSES.len());
        let janice = records.iter().find(|r| r.id == JANICE_WAY).expect("Janice Way");
        assert_eq!(
            janice.provider_representation.as_ref().expect("representation")["errors"].as_array().map(Vec::len),
            Some(5)
        );
        assert_eq!(records.iter().find(|r| r.id == JOHN_SMITH).map(|r| r.status.as_str()), Some("remediate"));
    }
}
