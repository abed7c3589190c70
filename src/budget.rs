//! Credit balances (SPEC §5): before a request of an access key with a balance
//! reaches a provider, an estimate of its cost is reserved in the ledger (402
//! `insufficient_credits` once the balance is spent); when it ends, the exact
//! charge is settled. Concurrent requests overdraw by at most their reservations.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::billing;
use crate::catalog::Price;
use crate::error::ApiError;
use crate::ledger::{Fallback, FileLedger, Ledger, LedgerError, RedisLedger, Reservation};
use crate::resolve::Target;
use crate::state::State;
use crate::usage::Usage;

/// Output tokens assumed when a request does not cap them.
const DEFAULT_OUTPUT_TOKENS: u64 = 1024;

/// The process's ledger, opened on first use (Redis needs the runtime).
#[derive(Default)]
pub struct Budget {
    ledger: OnceCell<Option<Arc<dyn Ledger>>>,
}

impl Budget {
    /// The ledger: Redis when configured, else the local file when some access key
    /// has a balance, else none.
    async fn ledger(&self, state: &State) -> Result<Option<Arc<dyn Ledger>>, ApiError> {
        let settings = &state.config.ledger;
        self.ledger
            .get_or_try_init(|| async {
                if let Some(url) = &settings.redis_url {
                    let fallback = match settings.local_allowance {
                        None => Fallback::Refuse,
                        Some(allowance) => Fallback::AllowLocal { allowance },
                    };
                    let l = RedisLedger::connect(url, &settings.redis_prefix, fallback).await?;
                    Ok(Some(l as Arc<dyn Ledger>))
                } else if state.access.has_balances() {
                    let l = FileLedger::open(&settings.path, settings.flush_interval)?;
                    Ok(Some(l as Arc<dyn Ledger>))
                } else {
                    Ok(None)
                }
            })
            .await
            .cloned()
            .map_err(|e: LedgerError| ApiError::LedgerUnavailable(e.to_string()))
    }

    /// Admits a request of access key `key` (with a balance) or refuses it with 402.
    pub async fn admit(
        &self,
        state: &State,
        key: usize,
        body_len: usize,
        output_cap: Option<u64>,
        targets: &[Target],
    ) -> Result<Option<Reservation>, ApiError> {
        let Some(entry) = state.access.entry(key) else {
            return Ok(None);
        };
        let Some(balance) = entry.credits else {
            return Ok(None);
        };
        let Some(ledger) = self.ledger(state).await? else {
            return Ok(None);
        };
        let estimate = estimate(state, body_len, output_cap, targets);
        match ledger.reserve(&entry.name, balance, estimate).await {
            Ok(r) => Ok(Some(r)),
            Err(LedgerError::Insufficient { balance, spent }) => {
                Err(ApiError::InsufficientCredits { balance, spent })
            }
            Err(e) => Err(ApiError::LedgerUnavailable(e.to_string())),
        }
    }

    /// Makes what was settled durable (before the process exits).
    pub async fn flush(&self) {
        if let Some(Some(ledger)) = self.ledger.get() {
            if let Err(e) = ledger.flush().await {
                log::error!("ledger: flush before exit: {e}");
            }
        }
    }

    /// Settles a finished request: its reservation, or a plain record of spending.
    pub async fn settle(
        &self,
        state: &State,
        key: Option<usize>,
        reservation: Option<Reservation>,
        charge: u64,
    ) {
        let Ok(Some(ledger)) = self.ledger(state).await else {
            return;
        };
        let result = match (reservation, key.and_then(|k| state.access.entry(k))) {
            (Some(r), _) => ledger.settle(r, charge).await,
            (None, Some(entry)) if charge > 0 => ledger.record(&entry.name, charge).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            log::error!("ledger: {e}");
        }
    }
}

/// What a request may cost at most, roughly: its bytes / 4 as input tokens and its
/// output cap (or 1024) as output tokens, at the first target's price.
fn estimate(state: &State, body_len: usize, output_cap: Option<u64>, targets: &[Target]) -> u64 {
    let usage = Usage {
        input: body_len as u64 / 4,
        output: output_cap.unwrap_or(DEFAULT_OUTPUT_TOKENS),
        ..Usage::default()
    };
    let price = targets.first().and_then(|t| target_price(state, t));
    billing::charge(
        crate::auth::Billing::Managed,
        Some(&usage),
        price.as_ref(),
        state.config.fee,
    )
    .total()
}

fn target_price(state: &State, t: &Target) -> Option<Price> {
    match t.model {
        Some(i) => state.catalog.models.get(i).and_then(|m| m.price),
        None => {
            let provider = state.catalog.providers.get(t.provider)?;
            state
                .catalog
                .price_row(&provider.id, &t.upstream_model)
                .map(|r| r.price)
        }
    }
}
