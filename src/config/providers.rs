//! The real providers' settings, and how their levels map to Fractal-style items.

use anyhow::{bail, Context as _};

use super::env::Env;
use crate::domain::levels::LevelMap;
use crate::secret::Secret;

/// A real Fractal.
#[derive(Debug, Clone)]
pub struct FractalSettings {
    /// Where users authorize (`/authorize`): `https://fractal.id`, staging `https://next.fractal.id`.
    pub frontend_url: String,
    pub auth_url: String,
    pub resource_url: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// A real Sumsub.
#[derive(Debug, Clone)]
pub struct SumsubSettings {
    pub base_url: String,
    pub app_token: Secret,
    pub secret_key: Secret,
}

/// A real Sila.
#[derive(Debug, Clone)]
pub struct SilaSettings {
    pub base_url: String,
    pub app_handle: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// A real ident.
#[derive(Debug, Clone)]
pub struct IdentSettings {
    /// The API root, ending in `/api/v1`.
    pub base_url: String,
    pub token: Secret,
}

/// How provider levels map to Fractal-style items, so one scope model covers every provider.
#[derive(Debug, Clone)]
pub struct LevelSettings {
    /// Sumsub level names.
    pub sumsub: LevelMap,
    /// Sila KYC flow ids (uuids of the company's own flows: no default).
    pub sila: LevelMap,
    /// ident application types (`kyc`, `kyb`): the details scope that guards an application's `params`, and the
    /// level its decision counts toward in `kycState`.
    pub ident: LevelMap,
}

/// Sumsub's documented level names (its API reference and the `applicantReviewed` examples use `basic-kyc-level`).
pub const DEFAULT_SUMSUB_LEVELS: &str = "basic-kyc-level=basic+selfie+liveness; id-and-liveness=basic+liveness";
/// ident's two application types.
pub const DEFAULT_IDENT_TYPES: &str = "kyc=basic; kyb=plus";

impl Default for LevelSettings {
    fn default() -> Self {
        LevelSettings {
            sumsub: LevelMap::parse(DEFAULT_SUMSUB_LEVELS).expect("valid default"),
            sila: LevelMap::default(),
            ident: LevelMap::parse(DEFAULT_IDENT_TYPES).expect("valid default"),
        }
    }
}

impl LevelSettings {
    pub(super) fn from_env(env: &Env<'_>) -> anyhow::Result<Self> {
        let d = LevelSettings::default();
        let map = |name: &str, default: LevelMap| -> anyhow::Result<LevelMap> {
            match env.get(name) {
                None => Ok(default),
                Some(spec) => LevelMap::parse(&spec).map_err(|e| anyhow::anyhow!("{name} is not valid: {e}")),
            }
        };
        Ok(LevelSettings {
            sumsub: map("KYC_GATEWAY_SUMSUB_LEVELS", d.sumsub)?,
            sila: map("KYC_GATEWAY_SILA_FLOWS", d.sila)?,
            ident: map("KYC_GATEWAY_IDENT_TYPES", d.ident)?,
        })
    }
}

/// The real providers configured, each `None` when none of its variables is set. Any variable of a provider means
/// that provider for real: a half-configured one fails, never falls back to the sandbox.
pub(super) struct Providers {
    pub fractal: Option<FractalSettings>,
    pub sumsub: Option<SumsubSettings>,
    pub sila: Option<SilaSettings>,
    pub ident: Option<IdentSettings>,
}

impl Providers {
    pub(super) fn from_env(env: &Env<'_>) -> anyhow::Result<Self> {
        let section = |prefix: &str, names: &[&str]| names.iter().any(|n| env.get(&format!("{prefix}{n}")).is_some());
        let required = |name: &str| env.get(name).with_context(|| format!("{name} is required for that provider"));
        let or = |name: &str, default: &str| env.get(name).unwrap_or_else(|| default.to_owned());
        let fractal_names = ["CLIENT_ID", "CLIENT_SECRET", "AUTH_URL", "RESOURCE_URL", "FRONTEND_URL"];
        let fractal = if section("KYC_GATEWAY_FRACTAL_", &fractal_names) {
            Some(FractalSettings {
                frontend_url: or("KYC_GATEWAY_FRACTAL_FRONTEND_URL", "https://fractal.id"),
                auth_url: or("KYC_GATEWAY_FRACTAL_AUTH_URL", "https://auth.fractal.id"),
                resource_url: or("KYC_GATEWAY_FRACTAL_RESOURCE_URL", "https://resource.fractal.id"),
                client_id: required("KYC_GATEWAY_FRACTAL_CLIENT_ID")?,
                client_secret: Secret::new(required("KYC_GATEWAY_FRACTAL_CLIENT_SECRET")?),
            })
        } else {
            None
        };
        let sumsub = if section("KYC_GATEWAY_SUMSUB_", &["BASE_URL", "APP_TOKEN", "SECRET_KEY"]) {
            Some(SumsubSettings {
                base_url: or("KYC_GATEWAY_SUMSUB_BASE_URL", "https://api.sumsub.com"),
                app_token: Secret::new(required("KYC_GATEWAY_SUMSUB_APP_TOKEN")?),
                secret_key: Secret::new(required("KYC_GATEWAY_SUMSUB_SECRET_KEY")?),
            })
        } else {
            None
        };
        let sila = if section("KYC_GATEWAY_SILA_", &["BASE_URL", "APP_HANDLE", "CLIENT_ID", "CLIENT_SECRET"]) {
            Some(SilaSettings {
                base_url: or("KYC_GATEWAY_SILA_BASE_URL", "https://api.silamoney.com"),
                app_handle: required("KYC_GATEWAY_SILA_APP_HANDLE")?,
                client_id: required("KYC_GATEWAY_SILA_CLIENT_ID")?,
                client_secret: Secret::new(required("KYC_GATEWAY_SILA_CLIENT_SECRET")?),
            })
        } else {
            None
        };
        let ident = if section("KYC_GATEWAY_IDENT_", &["BASE_URL", "TOKEN"]) {
            Some(IdentSettings {
                base_url: or("KYC_GATEWAY_IDENT_BASE_URL", "https://ident.provide.services/api/v1"),
                token: Secret::new(required("KYC_GATEWAY_IDENT_TOKEN")?),
            })
        } else {
            None
        };
        Ok(Providers { fractal, sumsub, sila, ident })
    }
}

/// How a user id becomes a Sila user handle: the template must place the user id somewhere.
pub(super) fn sila_user_handle_template(env: &Env<'_>) -> anyhow::Result<String> {
    let template = env.get("KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE").unwrap_or_else(|| "{user_id}".into());
    if !template.contains("{user_id}") {
        bail!("KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE must contain {{user_id}}");
    }
    Ok(template)
}
