//! Production identity: tokens of issuers that publish their keys. Each test runs its own identity provider (an
//! axum server on port 0 serving an OpenID discovery document and a JWK Set of keys the test generated, counting the
//! fetches) and a production-mode gateway whose issuer points there, and speaks to the gateway over real HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kyc_gateway::config::{Config, IssuerSettings};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

use crate::auth::{assert_unauthenticated, post_raw, QUERY};
use crate::helpers::{eventually, production_app, spawn, TestApp};

/// The audience the test gateways require.
const AUDIENCE: &str = "kyc-gateway";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One 2048-bit RSA key per test process: generating one takes a moment even optimised.
fn rsa_private_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key"))
}

/// A key the test's identity provider signs with: its private half for signing, its public JWK for the set, and
/// its public key's bytes (what an attacker could use as an HMAC secret).
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public_forms: Vec<Vec<u8>>,
}

impl TestKey {
    fn rsa(kid: &str) -> TestKey {
        let key = rsa_private_key();
        let der = key.to_pkcs1_der().expect("PKCS#1 DER");
        let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
        let jwk = json!({ "kty": "RSA", "kid": kid, "use": "sig", "n": b64(&n), "e": b64(&e) });
        let public_der = key.to_public_key().to_pkcs1_der().expect("public DER").as_bytes().to_vec();
        TestKey {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            public_forms: vec![n, public_der, jwk.to_string().into_bytes()],
            jwk,
        }
    }

    fn ec(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("parses");
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
                          "x": b64(&point[1..33]), "y": b64(&point[33..]) });
        TestKey {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            public_forms: vec![point, jwk.to_string().into_bytes()],
            jwk,
        }
    }

    fn ed(kid: &str) -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("an Ed25519 key");
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parses").public_key().as_ref().to_vec();
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&public) });
        TestKey {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            public_forms: vec![public, jwk.to_string().into_bytes()],
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, &self.kid, claims)
    }

    /// Signs with this key under another algorithm name or `kid`.
    fn sign_as(&self, alg: Algorithm, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signs")
    }
}

#[derive(Clone)]
struct IdpState {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_hits: Arc<AtomicUsize>,
}

/// The test's identity provider: an OpenID discovery document and a JWK Set it can change (rotation).
struct Idp {
    state: IdpState,
}

async fn discovery(State(s): State<IdpState>) -> Json<Value> {
    Json(
        json!({ "issuer": s.issuer, "jwks_uri": format!("{}/jwks", s.issuer), "id_token_signing_alg_values_supported": ["RS256"] }),
    )
}

async fn jwks(State(s): State<IdpState>) -> Json<Value> {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "keys": s.keys.lock().expect("keys").clone() }))
}

impl Idp {
    async fn start(keys: &[&TestKey]) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let state = IdpState {
            issuer: format!("http://{}", listener.local_addr().expect("an address")),
            keys: Arc::new(Mutex::new(Vec::new())),
            jwks_hits: Arc::new(AtomicUsize::new(0)),
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let idp = Idp { state };
        idp.publish(keys);
        idp
    }

    fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// Serves these keys from now on (and no others).
    fn publish(&self, keys: &[&TestKey]) {
        *self.state.keys.lock().expect("keys") = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Claims of a valid token of this issuer for `sub`.
    fn claims(&self, sub: &str) -> Value {
        let now = kyc_gateway::clock::unix_seconds();
        json!({ "iss": self.issuer(), "sub": sub, "aud": AUDIENCE, "iat": now, "exp": now + 300, "scope": "uid:read" })
    }

    /// This issuer through OpenID discovery.
    fn discovered(&self) -> IssuerSettings {
        IssuerSettings { issuer: self.issuer().into(), jwks_url: None }
    }
}

/// A production-mode gateway (providers: a sandbox app's) that requires [`AUDIENCE`], after `adjust`; unless
/// `adjust` says otherwise, the first issuer with published keys names the users.
async fn gateway(adjust: impl FnOnce(&mut Config)) -> (TestApp, TestApp) {
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[], |c| {
        c.tokens.audiences = vec![AUDIENCE.into()];
        adjust(c);
        if c.tokens.user_issuer.is_none() {
            c.tokens.user_issuer = c.tokens.issuers.first().map(|i| i.issuer.clone());
        }
    })
    .await;
    (sandbox, app)
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.query(token, "{ me { id } }").await.ok().data("me.id").clone()
}

async fn assert_401(app: &TestApp, token: &str, what: &str) {
    let (status, headers, body) = post_raw(app, Some(&format!("Bearer {token}")), QUERY).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_unauthenticated(status, &headers, &body);
}

#[tokio::test]
async fn a_valid_token_of_each_key_type_from_a_discovered_key_set_is_accepted() {
    let (rsa, ec, ed) = (TestKey::rsa("rsa-1"), TestKey::ec("ec-1"), TestKey::ed("ed-1"));
    let idp = Idp::start(&[&rsa, &ec, &ed]).await;
    let (_sandbox, app) = gateway(|c| c.tokens.issuers = vec![idp.discovered()]).await;
    assert_eq!(me(&app, &rsa.sign(&idp.claims("user-rs256"))).await, "user-rs256");
    assert_eq!(me(&app, &rsa.sign_as(Algorithm::PS256, "rsa-1", &idp.claims("user-ps256"))).await, "user-ps256");
    assert_eq!(me(&app, &ec.sign(&idp.claims("user-es256"))).await, "user-es256");
    assert_eq!(me(&app, &ed.sign(&idp.claims("user-eddsa"))).await, "user-eddsa");
    // Scopes as an `scp` array, and a second audience among others.
    let mut claims = idp.claims("user-scp");
    claims.as_object_mut().expect("claims").remove("scope");
    claims["scp"] = json!(["uid:read"]);
    claims["aud"] = json!(["another-api", AUDIENCE]);
    assert_eq!(me(&app, &ec.sign(&claims)).await, "user-scp");
    assert!(app.verifier.ready().await, "every issuer's keys are at hand");
    assert_eq!(idp.jwks_hits(), 1, "the set was fetched once and served every token from the cache");
}

#[tokio::test]
async fn expired_not_yet_valid_foreign_unsigned_and_confused_tokens_are_401() {
    let (rsa, ec, ed) = (TestKey::rsa("rsa-1"), TestKey::ec("ec-1"), TestKey::ed("ed-1"));
    let idp = Idp::start(&[&rsa, &ec, &ed]).await;
    let (_sandbox, app) = gateway(|c| c.tokens.issuers = vec![idp.discovered()]).await;
    let now = kyc_gateway::clock::unix_seconds();
    let with = |key: &str, value: Value| {
        let mut claims = idp.claims("user-1");
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = idp.claims("user-1");
        claims.as_object_mut().expect("claims").remove(key);
        claims
    };

    let expired = ec.sign(&with("exp", json!(now - 120)));
    let (status, headers, body) = post_raw(&app, Some(&format!("Bearer {expired}")), QUERY).await;
    assert_unauthenticated(status, &headers, &body);
    assert_eq!(body["errors"][0]["message"], "token expired");

    let cases = [
        ("a future nbf", ec.sign(&with("nbf", json!(now + 120)))),
        ("another audience", ec.sign(&with("aud", json!("another-api")))),
        ("no audience", rsa.sign(&without("aud"))),
        ("aud null", ed.sign(&with("aud", Value::Null))),
        ("another issuer", ec.sign(&with("iss", json!("https://evil.example.com")))),
        ("the issuer with a trailing slash", ec.sign(&with("iss", json!(format!("{}/", idp.issuer()))))),
        ("no exp", ec.sign(&without("exp"))),
        ("an unknown kid", ec.sign_as(Algorithm::ES256, "not-published", &idp.claims("user-1"))),
        ("another key under a published kid", TestKey::ec("ec-1").sign(&idp.claims("user-1"))),
        ("ES256 named for the RSA key", ec.sign_as(Algorithm::ES256, "rsa-1", &idp.claims("user-1"))),
    ];
    for (what, token) in &cases {
        assert_401(&app, token, what).await;
    }
    for (kid, alg) in [(Some("rsa-1"), "none"), (None, "none"), (Some("ec-1"), "None")] {
        let header = match kid {
            Some(kid) => json!({ "alg": alg, "typ": "JWT", "kid": kid }),
            None => json!({ "alg": alg, "typ": "JWT" }),
        };
        let unsigned = format!("{}.{}.", b64(header.to_string()), b64(idp.claims("user-1").to_string()));
        assert_401(&app, &unsigned, "alg none").await;
    }
    // Algorithm confusion: HS256 "signed" with an issuer's public key as the HMAC secret, in every form at hand.
    for key in [&rsa, &ec, &ed] {
        for secret in &key.public_forms {
            let hmac = TestKey { encoding: EncodingKey::from_secret(secret), ..TestKey::ed("unused") };
            assert_401(
                &app,
                &hmac.sign_as(Algorithm::HS256, &key.kid, &idp.claims("user-1")),
                "HS256 with a public key",
            )
            .await;
        }
    }
    assert_eq!(me(&app, &ec.sign(&idp.claims("user-1"))).await, "user-1", "and a valid token still passes");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart_and_the_retired_one_stops_working() {
    let (old, new) = (TestKey::ec("2024-key"), TestKey::ed("2025-key"));
    let idp = Idp::start(&[&old]).await;
    let (_sandbox, app) = gateway(|c| c.tokens.issuers = vec![idp.discovered()]).await;
    assert_eq!(me(&app, &old.sign(&idp.claims("user-1"))).await, "user-1");
    assert_eq!(idp.jwks_hits(), 1);

    idp.publish(&[&new]);
    assert_eq!(me(&app, &new.sign(&idp.claims("user-1"))).await, "user-1", "the new kid fetched the set again");
    assert_eq!(idp.jwks_hits(), 2);
    assert_401(&app, &old.sign(&idp.claims("user-1")), "a key the provider no longer publishes").await;
}

#[tokio::test]
async fn a_made_up_kid_just_before_a_rotation_does_not_hold_back_the_rotated_in_key() {
    let (old, new) = (TestKey::ec("2024-key"), TestKey::ed("2025-key"));
    let idp = Idp::start(&[&old]).await;
    let (_sandbox, app) = gateway(|c| c.tokens.issuers = vec![idp.discovered()]).await;
    eventually("the issuer's keys are fetched", || app.verifier.ready()).await;
    let before = idp.jwks_hits();
    // An attacker's token naming a made-up kid (one a minute would do): it spends that kid's fetch.
    let bogus = old.sign_as(Algorithm::ES256, "made-up", &idp.claims("user-1"));
    assert_401(&app, &bogus, "a made-up kid").await;
    assert_401(&app, &bogus, "the made-up kid, again").await;
    assert_eq!(idp.jwks_hits() - before, 1, "one fetch for the made-up kid");

    idp.publish(&[&old, &new]);
    assert_eq!(me(&app, &new.sign(&idp.claims("user-1"))).await, "user-1", "the rotated-in kid is accepted at once");
    assert_eq!(idp.jwks_hits() - before, 2, "with one fetch of its own");
    assert_401(&app, &bogus, "the made-up kid, still backing off").await;
    assert_eq!(idp.jwks_hits() - before, 2);
}

#[tokio::test]
async fn a_burst_of_tokens_naming_unknown_kids_fetches_the_key_set_a_bounded_number_of_times() {
    let key = TestKey::ec("ec-1");
    let idp = Idp::start(&[&key]).await;
    let (_sandbox, app) = gateway(|c| c.tokens.issuers = vec![idp.discovered()]).await;
    eventually("the issuer's keys are fetched", || app.verifier.ready()).await;
    let before = idp.jwks_hits();
    let tokens: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            // Made-up kids under the key's own algorithm, and under algorithms that may never cause a fetch.
            0 | 1 => key.sign_as(Algorithm::ES256, &format!("made-up-{i}"), &idp.claims("user-1")),
            2 => TestKey::ed("x").sign_as(Algorithm::EdDSA, &format!("made-up-{i}"), &idp.claims("user-1")),
            _ => TestKey { encoding: EncodingKey::from_secret(b"guess"), ..TestKey::ed("x") }.sign_as(
                Algorithm::HS256,
                &format!("made-up-{i}"),
                &idp.claims("user-1"),
            ),
        })
        .collect();
    let headers: Vec<String> = tokens.iter().map(|token| format!("Bearer {token}")).collect();
    let answers = futures_util::future::join_all(headers.iter().map(|h| post_raw(&app, Some(h), QUERY))).await;
    assert!(answers.iter().all(|(status, _, _)| *status == reqwest::StatusCode::UNAUTHORIZED));
    let burst = idp.jwks_hits() - before;
    assert!((1..=3).contains(&burst), "{burst} fetches for 30 made-up kids: at most the budget's burst of 3");
    for token in tokens.iter().take(8) {
        assert_401(&app, token, "an unknown kid, again").await;
    }
    assert_eq!(idp.jwks_hits() - before, burst, "none more: each kid backs off, and the budget is spent");
    assert_eq!(me(&app, &key.sign(&idp.claims("user-1"))).await, "user-1", "known keys are served throughout");
}

#[tokio::test]
async fn an_issuer_with_a_configured_jwks_url_has_its_own_keys_and_algorithms_come_from_the_allow_list() {
    let (ec, rsa) = (TestKey::ec("ec-1"), TestKey::rsa("rsa-1"));
    let partner_key = TestKey::ed("partner-1");
    let idp = Idp::start(&[&ec, &rsa]).await;
    let partner = Idp::start(&[&partner_key]).await;
    let partner_issuer = "urn:kyc-gateway-test:partner";
    let (_sandbox, app) = gateway(|c| {
        c.tokens.issuers = vec![
            idp.discovered(),
            IssuerSettings { issuer: partner_issuer.into(), jwks_url: Some(format!("{}/jwks", partner.issuer())) },
        ];
        c.tokens.user_issuer = Some(partner_issuer.into());
        c.tokens.algorithms = vec![Algorithm::ES256, Algorithm::EdDSA];
    })
    .await;
    let mut partner_claims = idp.claims("partner-user");
    partner_claims["iss"] = json!(partner_issuer);
    assert_eq!(me(&app, &partner_key.sign(&partner_claims)).await, "partner-user");
    let mut ec_client = idp.claims("svc");
    ec_client["client_id"] = json!("svc");
    assert!(app.query(&ec.sign(&ec_client), "{ __typename }").await.ok().errors().is_empty(), "the other's client");
    assert_401(&app, &ec.sign(&idp.claims("user-1")), "a user of the issuer that does not name users").await;
    assert_401(&app, &ec.sign(&partner_claims), "the partner's iss, another issuer's key").await;
    assert_401(&app, &partner_key.sign(&idp.claims("user-1")), "the partner's key, another iss").await;
    assert_401(&app, &rsa.sign(&idp.claims("user-1")), "RS256 is not on this gateway's allow-list").await;
}

#[tokio::test]
async fn the_verifier_is_ready_only_once_every_issuer_s_keys_are_fetched_and_refreshes_them() {
    let key = TestKey::ed("ed-1");
    let idp = Idp::start(&[&key]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let down = format!("http://{}/jwks", closed.local_addr().expect("an address"));
    drop(closed);
    let (_sandbox, app) = gateway(|c| {
        c.tokens.issuers =
            vec![idp.discovered(), IssuerSettings { issuer: "urn:kyc-gateway-test:down".into(), jwks_url: Some(down) }];
        c.tokens.user_issuer = Some(idp.issuer().into());
        c.tokens.jwks_refresh = Duration::from_secs(1);
    })
    .await;
    // The gateway starts while an identity provider is down, and serves the issuers it can.
    assert_eq!(me(&app, &key.sign(&idp.claims("user-1"))).await, "user-1");
    assert!(!app.verifier.ready().await, "one issuer's keys are missing");
    let readyz = app.http.get(app.url("/readyz")).send().await.expect("answer");
    assert_eq!(readyz.status(), 503, "not ready without an issuer's keys");
    let body: Value = readyz.json().await.expect("JSON");
    assert_eq!(body["checks"]["token_keys"], "not_fetched", "{body}");
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    eventually("the keys are fetched again periodically", || async { idp.jwks_hits() >= 3 }).await;

    let (_sandbox, app) = gateway(|c| c.tokens.issuers = vec![idp.discovered()]).await;
    eventually("the verifier is ready", || app.verifier.ready()).await;
    let readyz = app.http.get(app.url("/readyz")).send().await.expect("answer");
    assert_eq!(readyz.status(), 200, "ready once every issuer's keys are at hand");
}

#[tokio::test]
async fn a_websocket_connection_authenticates_with_a_token_of_a_published_key() {
    let key = TestKey::rsa("rsa-1");
    let idp = Idp::start(&[&key]).await;
    let (_sandbox, app) = gateway(|c| c.tokens.issuers = vec![idp.discovered()]).await;
    let _ws = crate::ws::Ws::ready(&app, &key.sign_as(Algorithm::PS256, "rsa-1", &idp.claims("user-1"))).await;
    let mut refused = crate::ws::Ws::connect(&app, crate::ws::TRANSPORT_WS).await;
    let closed = refused.init(&TestKey::rsa("rsa-2").sign(&idp.claims("user-1"))).await.expect_err("refused");
    assert_eq!(closed.code, 4403, "{closed:?}");
}

/// Claims of a client-credentials token of `idp` for the client `name` with `scope`.
fn client_claims(idp: &Idp, name: &str, scope: &str) -> Value {
    let mut claims = idp.claims(name);
    claims["client_id"] = json!(name);
    claims["scope"] = json!(scope);
    claims
}

#[tokio::test]
async fn a_subject_of_one_issuer_never_acts_as_the_user_of_another() {
    let (ours, theirs) = (TestKey::ed("ours-1"), TestKey::ed("theirs-1"));
    let (idp, partner) = (Idp::start(&[&ours]).await, Idp::start(&[&theirs]).await);
    let (_sandbox, app) = gateway(|c| {
        c.tokens.issuers = vec![idp.discovered(), partner.discovered()];
        c.tokens.user_issuer = Some(idp.issuer().into());
    })
    .await;
    assert_eq!(me(&app, &ours.sign(&idp.claims("user-1"))).await, "user-1");
    // The partner names a subject "user-1" too: it is not this gateway's user-1, so it may not read as them.
    assert_401(&app, &theirs.sign(&partner.claims("user-1")), "a user token of an issuer that names no users").await;
    let body = app.query(&theirs.sign(&partner.claims("user-1")), "{ me { id } }").await.body;
    assert!(body.to_string().contains("does not name this gateway's users"), "{body}");
    // Its client tokens are clients of their own: `(issuer, client, sub)`.
    let client = theirs.sign(&client_claims(&partner, "user-1", "uid:read"));
    let answer = app.query(&client, "{ me { id } }").await;
    assert_eq!(answer.codes(), ["NOT_A_USER_TOKEN"], "a client is nobody's `me`: {:?}", answer.body);
}

#[tokio::test]
async fn an_issuer_grants_only_the_scopes_configured_for_it() {
    let (ours, theirs) = (TestKey::ed("ours-1"), TestKey::ed("theirs-1"));
    let (idp, partner) = (Idp::start(&[&ours]).await, Idp::start(&[&theirs]).await);
    let (_sandbox, app) = gateway(|c| {
        c.tokens.issuers = vec![idp.discovered(), partner.discovered()];
        c.tokens.user_issuer = Some(idp.issuer().into());
        c.tokens.issuer_scopes = vec![(partner.issuer().into(), kyc_gateway::auth::ScopeGrants::parse("uid:read"))];
    })
    .await;
    let query = r#"{ user(id: "b76ab44d-b71e-4d19-b6f9-f6e88cd73946") { id } }"#;
    let ours_client = ours.sign(&client_claims(&idp, "mesh", "client.users:read"));
    app.query(&ours_client, query).await.ok();
    // The partner's token says client.users:read, which the partner may not grant: it reads no other user.
    let theirs_client = theirs.sign(&client_claims(&partner, "mesh", "client.users:read"));
    let answer = app.query(&theirs_client, query).await;
    assert!(answer.data("user").is_null(), "{:?}", answer.body);
    assert_eq!(answer.codes(), ["UNAUTHORIZED_FIELD_OR_TYPE"], "{:?}", answer.body);
}
