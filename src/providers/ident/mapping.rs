//! ident's wire format -> the gateway's KYC application.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::models::{CreateWire, KycApplicationWire};
use super::states;
use crate::domain::application::{
    ApplicationParams, KycApplication, KycApplicationStatus, KycApplicationType, NewKycApplication,
};

pub(crate) fn application(wire: KycApplicationWire) -> KycApplication {
    KycApplication {
        created_at: OffsetDateTime::parse(&wire.created_at, &Rfc3339).ok(),
        status: KycApplicationStatus::parse(&wire.status),
        state: states::state(&wire.status),
        kind: KycApplicationType::parse(&wire.kind).unwrap_or(KycApplicationType::Kyc),
        id: wire.id,
        user_id: wire.user_id,
        provider: wire.provider,
        identifier: wire.identifier,
        status_word: wire.status,
        name: wire.name,
        description: wire.description,
        params: wire.params,
        provider_representation: wire.provider_representation,
    }
}

/// The params as ident takes them: snake_case keys, the provider's own under a nested `params`.
fn wire_params(params: &ApplicationParams) -> Value {
    let fields = [
        ("first_name", &params.first_name),
        ("last_name", &params.last_name),
        ("name", &params.name),
        ("date_of_birth", &params.date_of_birth),
        ("email", &params.email),
        ("id_number", &params.id_number),
        ("ssn", &params.ssn),
        ("id_photo", &params.id_photo),
        ("id_photo_back", &params.id_photo_back),
        ("selfie", &params.selfie),
        ("selfie_video", &params.selfie_video),
        ("webhook_url", &params.webhook_url),
        ("affiliate_id", &params.affiliate_id),
        ("type", &params.verification_type),
    ];
    let mut out: Map<String, Value> =
        fields.into_iter().filter_map(|(key, value)| Some((key.to_owned(), Value::String(value.clone()?)))).collect();
    if let Some(nested) = &params.provider_params {
        out.insert("params".into(), nested.0.clone());
    }
    Value::Object(out)
}

/// `POST /kyc_applications`'s body.
pub(crate) fn create_wire(new: &NewKycApplication) -> CreateWire {
    CreateWire {
        user_id: Some(new.provider_user.clone()),
        provider: Some(new.provider.clone()),
        kind: Some(new.kind.as_str().to_owned()),
        name: new.name.clone(),
        description: new.description.clone(),
        params: Some(wire_params(&new.params)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KycState;

    #[test]
    fn a_seed_002_record_maps_with_its_offset_timestamp() {
        let json = r#"{"id":"72258a99-1518-4526-a5fa-043081eee7f0","created_at":"2019-06-12T02:31:33.613098-04:00",
            "application_id":"bca2348c-442f-4c48-99a4-7b3510385e53","user_id":"47069619-2035-4193-bdd0-af4d5096b649",
            "provider":"identitymind","identifier":null,"type":"kyc","status":"failed","name":"Tim Evans",
            "description":"No national id country specified, and invalid format for US Social Security Number"}"#;
        let app = application(serde_json::from_str(json).expect("parses"));
        assert_eq!(app.state, KycState::Error);
        assert_eq!(app.status, Some(KycApplicationStatus::Failed));
        assert_eq!(app.created_at.map(|t| t.unix_timestamp()), Some(1_560_321_093));
    }
}
