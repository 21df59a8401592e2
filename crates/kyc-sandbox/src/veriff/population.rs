//! The sandbox Veriff's sessions: every third gateway user has one or two, whose decisions cover every status of
//! Veriff's "Verification session decisions" page (and a session without a decision yet), declines and resubmissions
//! with documented reason codes. The seed person's session is approved, with their document's data.

use super::wire::{Document, Person};
use crate::rng::Rng;

/// The level every session counts as, and its items, as a gateway's level map reads them.
pub const LEVEL_ITEMS: &str = "idv=basic+selfie+liveness";

/// The decisions, cycled through; `None`: submitted, no decision yet (`verification: null`).
pub const DECISIONS: [Option<&str>; 7] = [
    Some("approved"),
    Some("declined"),
    Some("resubmission_requested"),
    Some("review"),
    Some("expired"),
    Some("abandoned"),
    None,
];

/// Decline reasons of Veriff's decision-codes table.
const DECLINED: [(u32, &str); 4] = [
    (102, "Suspected document tampering"),
    (103, "Person showing the document does not appear to match document photo"),
    (105, "Suspicious behaviour"),
    (106, "Known fraud"),
];

/// Resubmission reasons of Veriff's decision-codes table.
const RESUBMISSION: [(u32, &str); 3] =
    [(201, "Video and/or photos missing"), (204, "Poor image quality"), (207, "Document expired")];

const FIRST: [&str; 8] = ["SARAH", "JOHN", "MARIA", "PEETER", "ANNA", "KARL", "LIIS", "MARKUS"];
const LAST: [&str; 8] = ["MORGAN", "SMITH", "TAMM", "SAAR", "KASK", "MAGI", "ROOS", "LEPP"];
const COUNTRIES: [&str; 5] = ["EE", "GB", "DE", "FI", "LV"];
const DOCUMENTS: [&str; 3] = ["PASSPORT", "ID_CARD", "DRIVERS_LICENSE"];

/// The code Veriff sends with a decision status (its status-codes table: `expired` and `abandoned` share 9104,
/// `review` is 9121; its decision endpoint's page gives 9121 to `abandoned` instead).
pub fn code(status: &str) -> u32 {
    match status {
        "approved" => 9001,
        "declined" => 9102,
        "resubmission_requested" => 9103,
        "review" => 9121,
        _ => 9104,
    }
}

/// A documented reason for a status that has one, the `i`-th of its table.
pub fn reason(status: &str, i: usize) -> Option<(u32, &'static str)> {
    match status {
        "declined" => Some(DECLINED[i % DECLINED.len()]),
        "resubmission_requested" => Some(RESUBMISSION[i % RESUBMISSION.len()]),
        _ => None,
    }
}

/// A decision as the population holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionState {
    pub status: String,
    pub attempt_id: String,
    pub reason: Option<(u32, String)>,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub decision_time: String,
}

/// One verification session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// The gateway user it was created for (`vendorData`).
    pub vendor_data: Option<String>,
    /// When it was created.
    pub acceptance_time: String,
    /// What Veriff extracted from the person's document, once they submitted it.
    pub person: Option<Person>,
    pub document: Option<Document>,
    pub decision: Option<DecisionState>,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of unix milliseconds.
pub fn timestamp(unix_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"))
        .expect("a date formats")
}

fn extracted(rng: &mut Rng) -> (Person, Document) {
    let year = 1950 + rng.below(55);
    let dob = format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
    let country = *rng.pick(&COUNTRIES);
    let issued = 2016 + rng.below(8);
    let person = Person {
        first_name: Some(rng.pick(&FIRST).to_string()),
        last_name: Some(rng.pick(&LAST).to_string()),
        date_of_birth: Some(dob),
        year_of_birth: Some(year.to_string()),
        place_of_birth: Some(format!("{country} CITY")),
        ..Person::default()
    };
    let document = Document {
        number: Some(format!("{}{}", rng.pick(&["AB", "KR", "P"]), 1_000_000 + rng.below(8_999_999))),
        kind: Some(rng.pick(&DOCUMENTS).to_string()),
        country: Some(country.to_owned()),
        valid_from: Some(format!("{issued}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))),
        valid_until: Some(format!("{}-{:02}-{:02}", issued + 10, 1 + rng.below(12), 1 + rng.below(28))),
    };
    (person, document)
}

/// A session of `user` created at `created` (unix ms) with `decision`, the `i`-th of its kind.
fn session(user: &str, decision: Option<&str>, created: i64, i: usize, rng: &mut Rng) -> Session {
    let id = rng.uuid();
    let submitted = !matches!(decision, Some("expired" | "abandoned"));
    let (person, document) = if submitted { Some(extracted(rng)) } else { None }.unzip();
    let decision = decision.map(|status| DecisionState {
        status: status.to_owned(),
        attempt_id: rng.uuid(),
        reason: reason(status, i).map(|(code, text)| (code, text.to_owned())),
        decision_time: timestamp(created + 60_000 + rng.below(86_400_000) as i64),
    });
    Session { id, vendor_data: Some(user.to_owned()), acceptance_time: timestamp(created), person, document, decision }
}

/// The seed person's session: approved, with the data of Fractal's documented person (David Muller's passport).
fn seed_session(user: &str, rng: &mut Rng) -> Session {
    let person = Person {
        first_name: Some("David".into()),
        last_name: Some("Muller".into()),
        date_of_birth: Some("1967-08-16".into()),
        year_of_birth: Some("1967".into()),
        place_of_birth: Some("Berlin".into()),
        nationality: Some("DE".into()),
        ..Person::default()
    };
    let document = Document {
        number: Some("123456789".into()),
        kind: Some("PASSPORT".into()),
        country: Some("DE".into()),
        valid_from: Some("2015-03-02".into()),
        valid_until: Some("2025-03-01".into()),
    };
    Session {
        id: rng.uuid(),
        vendor_data: Some(user.to_owned()),
        acceptance_time: "2024-03-01T09:15:27.000Z".into(),
        person: Some(person),
        document: Some(document),
        decision: Some(DecisionState {
            status: "approved".into(),
            attempt_id: rng.uuid(),
            reason: None,
            decision_time: "2024-03-01T09:18:36.916Z".into(),
        }),
    }
}

/// Sessions for every third of the gateway users `users` (index 0 is the seed person); some users have an older
/// session that expired before the one they finished.
pub fn generate(users: &[String], seed: u64) -> Vec<Session> {
    let mut rng = Rng::new(seed ^ 0x7e21ff);
    let mut out = Vec::new();
    for (i, user) in users.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        if i == 0 {
            out.push(seed_session(user, &mut rng));
            continue;
        }
        let created = 1_700_000_000_000 + rng.below(40_000_000) as i64 * 1000;
        if i % 9 == 3 {
            out.push(session(user, Some("expired"), created - 8 * 86_400_000, i, &mut rng));
        }
        let decision = DECISIONS[(i / 3) % DECISIONS.len()];
        out.push(session(user, decision, created, i / 3, &mut rng));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn sessions_cover_every_decision_and_the_seed_person_is_approved_with_person_data() {
        let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        let sessions = generate(&users, 1);
        let decisions: HashSet<Option<&str>> =
            sessions.iter().map(|s| s.decision.as_ref().map(|d| d.status.as_str())).collect();
        assert_eq!(decisions.len(), DECISIONS.len());
        let seed = &sessions[0];
        assert_eq!(seed.vendor_data.as_deref(), Some("u0"));
        assert_eq!(seed.decision.as_ref().map(|d| d.status.as_str()), Some("approved"));
        assert_eq!(seed.person.as_ref().and_then(|p| p.last_name.as_deref()), Some("Muller"));
        assert!(sessions
            .iter()
            .all(|s| s.vendor_data.as_deref().is_some_and(|u| u[1..].parse::<usize>().is_ok_and(|i| i % 3 == 0))));
        assert!(sessions
            .iter()
            .filter_map(|s| s.decision.as_ref())
            .filter(|d| d.status == "declined" || d.status == "resubmission_requested")
            .all(|d| d.reason.is_some()));
        let twice = sessions.iter().filter(|s| s.vendor_data.as_deref() == Some("u3")).count();
        assert_eq!(twice, 2, "an older expired session, then the current one");
        assert_eq!(generate(&users, 1), sessions, "deterministic");
    }
}
