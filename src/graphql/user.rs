//! `User`: one person or institution of the company, with what each provider knows about them.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use tokio::sync::OnceCell;

use super::case::VerificationCase;
use super::errors::{self, bad_input, unauthorized};
use super::scope::{principal, require};
use super::Services;
use crate::auth::{verification_scope, wallet_currency_scope, CONTACT_READ, UID_READ, WALLET_READ};
use crate::domain::{self, aggregate_state, level_items, Email, KycState, Phone, Provider, ProviderProfile, Wallet};
use crate::providers::fractal::FractalError;

type Loaded = Result<Option<Arc<ProviderProfile>>, FractalError>;

/// A user the caller may read (row-level checks happen before one is built). Clones share the provider data, which
/// is fetched at most once however many fields ask for it.
#[derive(Clone)]
pub struct User {
    id: String,
    fractal: Arc<OnceCell<Loaded>>,
}

impl User {
    pub fn new(id: String) -> Self {
        User { id, fractal: Arc::new(OnceCell::new()) }
    }

    async fn fractal(&self, ctx: &Context<'_>) -> &Loaded {
        self.fractal
            .get_or_init(|| async {
                let services = ctx.data_unchecked::<Services>();
                services.fractal.profile(&self.id).await.map(|p| p.map(Arc::new))
            })
            .await
    }

    /// The Fractal profile, or the provider error as a GraphQL error.
    async fn profile(&self, ctx: &Context<'_>) -> Result<Option<Arc<ProviderProfile>>> {
        self.fractal(ctx).await.clone().map_err(|e| errors::fractal(&e))
    }

    /// Every case the caller may see: those whose every level item the caller holds `verification.X:read` for.
    async fn visible_cases(&self, ctx: &Context<'_>) -> Result<Vec<domain::VerificationCase>> {
        let scopes = principal(ctx).scopes();
        let profile = self.profile(ctx).await?;
        Ok(profile
            .iter()
            .flat_map(|p| p.cases.iter())
            .filter(|c| !c.items.is_empty() && c.items.iter().all(|i| scopes.reads_item(i)))
            .cloned()
            .collect())
    }
}

#[Object]
impl User {
    /// The company's own id of this user (the `sub` of the user's token).
    #[graphql(requires_scopes = "uid:read")]
    async fn id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        require(ctx, UID_READ)?;
        Ok(Some(ID(self.id.clone())))
    }

    #[graphql(requires_scopes = "contact:read")]
    async fn emails(&self, ctx: &Context<'_>) -> Result<Option<Vec<Email>>> {
        require(ctx, CONTACT_READ)?;
        Ok(Some(self.profile(ctx).await?.map(|p| p.emails.clone()).unwrap_or_default()))
    }

    #[graphql(requires_scopes = "contact:read")]
    async fn phones(&self, ctx: &Context<'_>) -> Result<Option<Vec<Phone>>> {
        require(ctx, CONTACT_READ)?;
        Ok(Some(self.profile(ctx).await?.map(|p| p.phones.clone()).unwrap_or_default()))
    }

    /// Wallets: all of them with `verification.wallet:read`, those of one currency with
    /// `verification.wallet-<currency>:read`.
    #[graphql(
        requires_scopes = "verification.wallet:read",
        requires_scopes = "verification.wallet-ada:read",
        requires_scopes = "verification.wallet-algo:read",
        requires_scopes = "verification.wallet-btc:read",
        requires_scopes = "verification.wallet-eth:read",
        requires_scopes = "verification.wallet-kar:read",
        requires_scopes = "verification.wallet-sol:read",
        requires_scopes = "verification.wallet-substrate:read",
        requires_scopes = "verification.wallet-sui:read",
        requires_scopes = "verification.wallet-xrp:read"
    )]
    async fn wallets(&self, ctx: &Context<'_>) -> Result<Option<Vec<Wallet>>> {
        let p = principal(ctx);
        let all = p.has(WALLET_READ);
        let currencies: Vec<_> =
            domain::WalletCurrency::ALL.into_iter().filter(|c| p.has(&wallet_currency_scope(c.as_str()))).collect();
        if !all && currencies.is_empty() {
            let mut alternatives = vec![vec![WALLET_READ.to_owned()]];
            alternatives.extend(domain::WalletCurrency::ALL.iter().map(|c| vec![wallet_currency_scope(c.as_str())]));
            return Err(unauthorized(alternatives));
        }
        let wallets = self.profile(ctx).await?.map(|p| p.wallets.clone()).unwrap_or_default();
        Ok(Some(wallets.into_iter().filter(|w| all || currencies.contains(&w.currency)).collect()))
    }

    /// The verification cases the caller may see: a case needs `verification.X:read` for every item X of its level;
    /// others are left out, as Fractal does. `level` keeps the cases that include every item of that level.
    async fn verification_cases(
        &self,
        ctx: &Context<'_>,
        provider: Option<Provider>,
        level: Option<String>,
    ) -> Vec<VerificationCase> {
        let wanted = level.as_deref().map(level_items).unwrap_or_default();
        match self.visible_cases(ctx).await {
            Ok(cases) => cases
                .into_iter()
                .filter(|c| provider.is_none_or(|p| c.provider == p))
                .filter(|c| wanted.iter().all(|w| c.items.contains(w)))
                .map(VerificationCase::new)
                .collect(),
            Err(e) => {
                // A provider that fails takes only its own cases away; the error says which.
                ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
                Vec::new()
            }
        }
    }

    /// The user's state at `level` across providers: APPROVED when one provider approved every item of the level,
    /// otherwise the most advanced state of the visible cases covering it. Needs `verification.X:read` for every item.
    async fn kyc_state(&self, ctx: &Context<'_>, level: String) -> Result<Option<KycState>> {
        let items = level_items(&level);
        if items.is_empty() {
            return Err(bad_input("level must name at least one level or add-on, e.g. \"plus\" or \"basic+liveness\""));
        }
        let scopes = principal(ctx).scopes();
        if !items.iter().all(|i| scopes.reads_item(i)) {
            return Err(unauthorized(vec![items.iter().map(|i| verification_scope(i)).collect()]));
        }
        let cases = self.visible_cases(ctx).await?;
        Ok(Some(aggregate_state(&items, &cases)))
    }
}
