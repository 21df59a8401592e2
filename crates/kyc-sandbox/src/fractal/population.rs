//! The sandbox's Fractal users: the person of Fractal's user-information documentation plus a generated population that covers every level and
//! add-on, every case status and credential, wallets of every currency, persons and institutions, several countries
//! and every field of the details table. Deterministic for a given seed and size.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::wire::{CaseWire, EmailWire, PhoneWire, UserInfo, WalletWire};
use super::Granted;
use crate::rng::Rng;
use kyc_vocabulary::details::{Format, Restriction, DETAIL_FIELDS};
use kyc_vocabulary::scopes::{
    details_scope, verification_scope, wallet_currency_scope, CONTACT_READ, UID_READ, WALLET_READ,
};
use kyc_vocabulary::{level_items, WALLET_CURRENCIES};

/// The uid of the person of Fractal's user-information documentation; also their gateway user id in the sandbox.
pub const SEED_PERSON_UID: &str = "b76ab44d-b71e-4d19-b6f9-f6e88cd73946";

/// Levels, then add-ons, as Fractal names them.
pub use kyc_vocabulary::{ADD_ONS, LEVELS};

/// (case status, credential, expired): every combination the population uses, cycled through.
const CASE_STATES: [(&str, &str, bool); 5] = [
    ("pending", "pending", false),
    ("contacted", "pending", false),
    ("done", "approved", false),
    ("done", "rejected", false),
    ("done", "approved", true),
];

const COUNTRIES: [(&str, &str); 10] = [
    ("US", "New York"),
    ("DK", "Copenhagen"),
    ("RO", "Bucharest"),
    ("DE", "Berlin"),
    ("GB", "London"),
    ("CA", "Toronto"),
    ("SG", "Singapore"),
    ("HK", "Hong Kong"),
    ("PT", "Lisbon"),
    ("FR", "Paris"),
];
const FIRST_NAMES: [&str; 12] =
    ["Ada", "Bjorn", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemi", "Luca"];
const LAST_NAMES: [&str; 12] = [
    "Andersen", "Bauer", "Costa", "Dumitru", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Klein", "Lopez",
];
const EMAIL_SOURCES: [&str; 3] = ["registration", "journey", "obsolete"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyKind {
    Person,
    Institution,
}

/// One verification case with the facts only the statistics show.
#[derive(Debug, Clone)]
pub struct SandboxCase {
    pub wire: CaseWire,
    /// Approved, but the proof of identity or address has expired since (counted as `expired` in the statistics).
    pub expired: bool,
}

impl SandboxCase {
    /// The word the statistics use for this case.
    pub fn stats_status(&self) -> &'static str {
        match (self.wire.status.as_deref(), self.wire.credential.as_deref(), self.expired) {
            (_, _, true) => "expired",
            (_, Some("approved"), _) => "approved",
            (_, Some("rejected"), _) => "rejected",
            (Some("contacted"), _, _) => "contacted",
            _ => "pending",
        }
    }

    pub fn items(&self) -> Vec<String> {
        level_items(&self.wire.level)
    }
}

#[derive(Debug, Clone)]
pub struct SandboxUser {
    pub uid: String,
    pub kind: PartyKind,
    pub country: &'static str,
    pub emails: Vec<EmailWire>,
    pub phones: Vec<PhoneWire>,
    pub wallets: Vec<WalletWire>,
    pub cases: Vec<SandboxCase>,
}

/// Everyone the sandbox Fractal knows.
#[derive(Clone)]
pub struct Population {
    pub users: Vec<SandboxUser>,
    index: HashMap<String, usize>,
}

impl Population {
    /// The seed person and `generated` more users from `seed`.
    pub fn generate(generated: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut users = Vec::with_capacity(generated + 1);
        users.push(seed_person(&mut rng));
        for i in 0..generated {
            users.push(generated_user(i, &mut rng));
        }
        let index = users.iter().enumerate().map(|(i, u)| (u.uid.clone(), i)).collect();
        Population { users, index }
    }

    pub fn get(&self, uid: &str) -> Option<&SandboxUser> {
        self.index.get(uid).map(|&i| &self.users[i])
    }

    pub fn get_mut(&mut self, uid: &str) -> Option<&mut SandboxUser> {
        self.index.get(uid).map(|&i| &mut self.users[i])
    }

    /// What `GET /v2/users/me` answers for `user` to a token with `scopes`: Fractal's own filtering.
    pub fn render_me(user: &SandboxUser, scopes: &Granted) -> UserInfo {
        let wallets: Vec<WalletWire> = user
            .wallets
            .iter()
            .filter(|w| scopes.has(WALLET_READ) || scopes.has(&wallet_currency_scope(&w.currency)))
            .cloned()
            .collect();
        let any_wallet_scope =
            scopes.has(WALLET_READ) || WALLET_CURRENCIES.iter().any(|c| scopes.has(&wallet_currency_scope(c)));
        let cases = user
            .cases
            .iter()
            .filter(|c| c.items().iter().all(|i| scopes.has(&verification_scope(i))))
            .map(|c| {
                let items = c.items();
                let mut wire = c.wire.clone();
                wire.details = c.wire.details.as_ref().and_then(|details| {
                    let visible: Map<String, Value> = details
                        .iter()
                        .filter(|(name, _)| {
                            DETAIL_FIELDS.iter().any(|f| {
                                f.name == name.as_str()
                                    && f.items
                                        .iter()
                                        .any(|i| items.iter().any(|c| c == i) && scopes.has(&details_scope(i)))
                            })
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    (!visible.is_empty()).then_some(visible)
                });
                wire
            })
            .collect();
        UserInfo {
            uid: scopes.has(UID_READ).then(|| user.uid.clone()),
            emails: (scopes.has(CONTACT_READ) || scopes.has("email:read")).then(|| user.emails.clone()),
            phones: scopes.has(CONTACT_READ).then(|| user.phones.clone()),
            wallets: any_wallet_scope.then_some(wallets),
            verification_cases: Some(cases),
        }
    }
}

fn details(pairs: &[(&str, &str)]) -> Option<Map<String, Value>> {
    Some(pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
}

fn case(id: String, level: &str, status: &str, credential: &str, details: Option<Map<String, Value>>) -> SandboxCase {
    SandboxCase {
        wire: CaseWire {
            id: Some(id),
            level: level.into(),
            journey_completed: Some(true),
            status: Some(status.into()),
            credential: Some(credential.into()),
            details,
        },
        expired: false,
    }
}

/// The person of Fractal's user-information documentation, both example responses merged.
fn seed_person(rng: &mut Rng) -> SandboxUser {
    let plus = details(&[
        ("residential_address_country", "DE"),
        ("residential_address_proof_file", "<URL>"),
        ("residential_address", "Wiener Straße 10, Berlin, 10999"),
        ("identification_document_type", "passport"),
        ("place_of_birth", "Berlin"),
        ("date_of_birth", "1967-08-16"),
        ("full_name", "David Muller"),
        ("identification_document_country", "DE"),
        ("identification_document_number", "123456789"),
    ]);
    let selfie =
        details(&[("identification_document_selfie_file", "<URL>"), ("identification_document_front_file", "<URL>")]);
    SandboxUser {
        uid: SEED_PERSON_UID.into(),
        kind: PartyKind::Person,
        country: "DE",
        emails: vec![EmailWire {
            address: "david.muller@example.com".into(),
            source_type: Some("registration".into()),
        }],
        phones: vec![PhoneWire { number: "+44000000000".into() }],
        wallets: vec![WalletWire {
            id: Some(rng.uuid()),
            address: "0x2003".into(),
            currency: "eth".into(),
            verified: Some(true),
        }],
        cases: vec![
            case(rng.uuid(), "plus+selfie", "pending", "pending", None),
            case(rng.uuid(), "basic+liveness", "done", "approved", None),
            case(rng.uuid(), "basic+liveness+wallet-eth", "done", "approved", None),
            case(rng.uuid(), "plus", "done", "approved", plus),
            case(rng.uuid(), "selfie", "done", "approved", selfie),
        ],
    }
}

/// The `i`-th generated user. Round-robin choices guarantee coverage; the generator adds variety.
fn generated_user(i: usize, rng: &mut Rng) -> SandboxUser {
    let uid = rng.uuid();
    let kind = if i % 5 == 4 { PartyKind::Institution } else { PartyKind::Person };
    let (country, city) = COUNTRIES[i % COUNTRIES.len()];
    let first = *rng.pick(&FIRST_NAMES);
    let last = *rng.pick(&LAST_NAMES);
    let name = match kind {
        PartyKind::Person => format!("{first} {last}"),
        PartyKind::Institution => format!("{last} Holdings"),
    };
    let emails = if i % 7 == 6 {
        Vec::new()
    } else {
        vec![EmailWire {
            address: format!("{}.{}.{i}@example.com", first.to_lowercase(), last.to_lowercase()),
            source_type: Some(EMAIL_SOURCES[i % EMAIL_SOURCES.len()].into()),
        }]
    };
    let phones = if i.is_multiple_of(2) {
        vec![PhoneWire { number: format!("+4520{:06}", rng.below(1_000_000)) }]
    } else {
        Vec::new()
    };
    let wallets = (0..i % 4)
        .map(|k| {
            let currency = WALLET_CURRENCIES[(i + k) % WALLET_CURRENCIES.len()];
            WalletWire {
                id: Some(rng.uuid()),
                address: format!("0x{}", rng.hex(40)),
                currency: currency.into(),
                verified: Some(rng.chance(70)),
            }
        })
        .collect();

    // One level and one or two add-ons; for a quarter of the users, as one combined case (`plus+selfie`). The
    // combined quarter follows `i / 16`, independent of the level and add-on choices, so every pair occurs combined.
    let mut items = vec![LEVELS[i % LEVELS.len()], ADD_ONS[i % ADD_ONS.len()]];
    if rng.chance(40) {
        let extra = ADD_ONS[(i * 7 + 3) % ADD_ONS.len()];
        if !items.contains(&extra) {
            items.push(extra);
        }
    }
    let levels: Vec<String> = if (i / ADD_ONS.len()).is_multiple_of(4) {
        vec![items.join("+")]
    } else {
        items.iter().map(|s| s.to_string()).collect()
    };
    let sow_type = match DETAIL_FIELDS.iter().find(|f| f.name == "sow_type").map(|f| f.format) {
        Some(Format::Choice(types)) => types[i % types.len()],
        _ => "salary",
    };
    let person = Person { name: &name, first, last, country, city, kind, sow_type };
    let cases = levels
        .iter()
        .enumerate()
        .map(|(k, level)| {
            // Countries follow `i % 10`; states follow `i / 10` so that every country sees every state.
            let (status, credential, expired) = CASE_STATES[(i / COUNTRIES.len() + k) % CASE_STATES.len()];
            let id = rng.uuid();
            let details = case_details(&id, level, &person, rng);
            SandboxCase {
                wire: CaseWire {
                    id: Some(id),
                    level: level.clone(),
                    journey_completed: Some(status != "pending" || rng.chance(50)),
                    status: Some(status.into()),
                    credential: Some(credential.into()),
                    details,
                },
                expired,
            }
        })
        .collect();
    SandboxUser { uid, kind, country, emails, phones, wallets, cases }
}

struct Person<'a> {
    name: &'a str,
    first: &'a str,
    last: &'a str,
    country: &'static str,
    city: &'static str,
    kind: PartyKind,
    sow_type: &'static str,
}

/// Every details field of the case's items that this kind of party has.
fn case_details(case_id: &str, level: &str, p: &Person<'_>, rng: &mut Rng) -> Option<Map<String, Value>> {
    let items = level_items(level);
    let mut out = Map::new();
    for field in DETAIL_FIELDS {
        if !field.items.iter().any(|i| items.iter().any(|c| c == i)) {
            continue;
        }
        let fits = match (field.restriction, p.kind) {
            (Restriction::Any, _) => true,
            (Restriction::Person, PartyKind::Person) => {
                field.name == "sow_type" || field.name.starts_with(&format!("sow_{}_", p.sow_type))
            }
            (Restriction::Institution, PartyKind::Institution) => true,
            _ => false,
        };
        if fits {
            out.insert(field.name.into(), value(field.name, field.format, case_id, p, rng));
        }
    }
    (!out.is_empty()).then_some(out)
}

fn value(name: &str, format: Format, case_id: &str, p: &Person<'_>, rng: &mut Rng) -> Value {
    let date = |rng: &mut Rng, from: usize, span: usize| {
        format!("{}-{:02}-{:02}", from + rng.below(span), 1 + rng.below(12), 1 + rng.below(28))
    };
    let text = match format {
        Format::Bool => return Value::Bool(true),
        Format::Url => format!("https://files.sandbox.fractal.invalid/{case_id}/{name}"),
        Format::Country => p.country.to_owned(),
        Format::Choice(words) if name == "sow_type" => {
            words.iter().find(|w| **w == p.sow_type).copied().unwrap_or(words[0]).to_owned()
        }
        Format::Choice(words) => (*rng.pick(words)).to_owned(),
        Format::Date if name == "date_of_birth" => date(rng, 1950, 50),
        Format::Date if name.contains("expiry") => date(rng, 2027, 8),
        Format::Date => date(rng, 2015, 10),
        Format::Text => match name {
            "full_name" | "beneficial_owner" | "managing_directors" => p.name.to_owned(),
            "place_of_birth" | "residential_address_city" => p.city.to_owned(),
            "residential_address" => format!("{} Main Street, {}", 1 + rng.below(200), p.city),
            "residential_address_line1" => format!("{} Main Street", 1 + rng.below(200)),
            "residential_address_line2" => format!("Apartment {}", 1 + rng.below(50)),
            "residential_address_zip" => format!("{:05}", rng.below(100_000)),
            "company_name" => format!("{} Holdings", p.last),
            "company_seat" | "jurisdiction" => p.country.to_owned(),
            "legal_form" => "LLC".to_owned(),
            "social_security_number" => {
                format!("9{:02}-{:02}-{:04}", rng.below(100), rng.below(100), rng.below(10_000))
            }
            "sow_estimated_net_worth_value" => format!("{}", 10_000 * (1 + rng.below(500))),
            "sow_gifts_name_of_donator" | "sow_unaudited_accountant_name" => {
                format!("{} {}", FIRST_NAMES[rng.below(12)], p.last)
            }
            "sow_gifts_relationship_with_donator" => "parent".to_owned(),
            "sow_gifts_reason_for_donation" => "family support".to_owned(),
            "sow_unaudited_accountant_professional_body" => "Institute of Chartered Accountants".to_owned(),
            _ => format!("{}-{}", p.first.to_uppercase(), rng.hex(8).to_uppercase()),
        },
    };
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_population_covers_every_level_status_currency_and_details_field() {
        let pop = Population::generate(1000, 42);
        assert_eq!(pop.users.len(), 1001);
        let items: HashSet<String> = pop.users.iter().flat_map(|u| u.cases.iter().flat_map(|c| c.items())).collect();
        for item in LEVELS.iter().chain(ADD_ONS.iter()) {
            assert!(items.contains(*item), "no case of {item}");
        }
        let statuses: HashSet<&str> = pop.users.iter().flat_map(|u| u.cases.iter().map(|c| c.stats_status())).collect();
        assert_eq!(statuses.len(), 5, "{statuses:?}");
        let currencies: HashSet<&str> =
            pop.users.iter().flat_map(|u| u.wallets.iter().map(|w| w.currency.as_str())).collect();
        assert_eq!(currencies.len(), WALLET_CURRENCIES.len());
        let fields: HashSet<&str> = pop
            .users
            .iter()
            .flat_map(|u| {
                u.cases.iter().filter_map(|c| c.wire.details.as_ref()).flat_map(|d| d.keys().map(String::as_str))
            })
            .collect();
        for f in DETAIL_FIELDS {
            assert!(fields.contains(f.name), "no user has {}", f.name);
        }
        assert!(pop.users.iter().any(|u| u.kind == PartyKind::Institution));
        assert!(pop.users.iter().any(|u| u.cases.iter().any(|c| c.items().len() > 1)));
    }

    #[test]
    fn the_same_seed_gives_the_same_population() {
        let (a, b) = (Population::generate(50, 9), Population::generate(50, 9));
        assert_eq!(a.users[17].uid, b.users[17].uid);
        assert_eq!(a.users[0].uid, SEED_PERSON_UID);
    }

    #[test]
    fn fractal_filters_me_by_the_token_scopes() {
        let pop = Population::generate(0, 1);
        let me = pop.get(SEED_PERSON_UID).expect("seed person");
        let info = Population::render_me(
            me,
            &Granted::parse("uid:read verification.plus:read verification.plus.details:read"),
        );
        assert!(info.emails.is_none() && info.wallets.is_none());
        let cases = info.verification_cases.expect("cases");
        assert_eq!(cases.len(), 1);
        let details = cases[0].details.as_ref().expect("plus details");
        assert_eq!(details["full_name"], "David Muller");
    }
}
