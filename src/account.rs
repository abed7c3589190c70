//! Accounting: when a request ends, its usage becomes token counters and credits
//! (SPEC §5, §8). Runs when the request is settled (`proxy::serve`), after the
//! last byte.

use std::sync::LazyLock;

use crate::billing::{self, Charge};
use crate::catalog::Price;
use crate::metrics::{metrics, Metrics, NO_KEY, UNLISTED};
use crate::proxy::ctx::Ctx;
use crate::state::State;
use crate::usage::Usage;

/// Bytes per token, for estimating a cut stream's output (from its text) and
/// input (from its prompt).
const BYTES_PER_TOKEN: u64 = 4;

/// Status codes as label strings, built once.
static STATUS: LazyLock<Vec<String>> = LazyLock::new(|| (0..600).map(|s| s.to_string()).collect());

/// What a finished request came to.
#[derive(Debug, Default)]
pub struct Settled {
    /// For the ledger and balances.
    pub charge: Charge,
    /// The usage measured (or estimated for a cut stream).
    pub usage: Option<Usage>,
    /// Tokens to count against rate limits (`None`: unknown, keep the estimate).
    pub used: Option<u64>,
}

/// Records a finished request: counters, histograms, tokens and credits.
pub fn settle(state: &State, ctx: &Ctx) -> Settled {
    let Some(m) = metrics() else {
        return Settled::default();
    };
    let access = ctx
        .auth
        .access_key
        .and_then(|i| state.access.entry(i))
        .map_or(NO_KEY, |e| &*e.name);
    let provider = ctx
        .route
        .provider
        .and_then(|p| state.catalog.providers.get(p))
        .map_or("none", |p| &*p.id);
    let model = match (ctx.route.model, ctx.route.provider) {
        (Some(i), _) => state.catalog.models.get(i).map_or(UNLISTED, |m| &*m.id),
        (None, Some(_)) => UNLISTED,
        (None, None) => "none",
    };
    let status = STATUS
        .get(usize::from(ctx.response.status))
        .map_or("0", String::as_str);
    let index = |i: Option<usize>| i.map_or(u32::MAX, |i| u32::try_from(i).unwrap_or(u32::MAX));
    let key = (
        state.generation,
        index(ctx.auth.access_key),
        index(ctx.route.provider),
        index(ctx.route.model),
    );
    let (duration, ttfb) = match ctx.started {
        Some(started) => (
            Some(started.elapsed().as_secs_f64()),
            ctx.response
                .first_byte
                .map(|first| first.duration_since(started).as_secs_f64()),
        ),
        None => (None, None),
    };
    m.served(
        (key, ctx.response.status),
        [access, provider, model, status],
        duration,
        ttfb,
    );
    if let Some(cut) = ctx.response.cut {
        m.aborted.with_label_values(&[provider, cut.label()]).inc();
    }

    // Nothing reported: a request that failed used nothing; a success whose
    // provider reports no usage is left at its estimate.
    let unreported = match ctx.response.status {
        200..=299 => None,
        _ => Some(0),
    };
    let Some(billing_kind) = ctx.auth.billing else {
        return Settled {
            used: Some(0),
            ..Settled::default()
        };
    };
    let Some(usage) = measured_usage(m, ctx, [access, provider, model]) else {
        return Settled {
            used: unreported,
            ..Settled::default()
        };
    };
    let used = usage.input.saturating_add(usage.output);
    let labels3 = [access, provider, model];
    let price = price(state, ctx);
    if price.is_none() {
        for (kind, n) in [("input", usage.input), ("output", usage.output)] {
            if n > 0 {
                m.unpriced_tokens
                    .with_label_values(&[access, provider, model, kind])
                    .inc_by(n);
            }
        }
    }
    let charge = billing::charge(billing_kind, Some(&usage), price.as_ref(), state.config.fee);
    m.add_spend(key, labels3, [usage.input, usage.output, charge.total()]);
    Settled {
        charge,
        usage: Some(usage),
        used: Some(used),
    }
}

/// The usage the provider reported; for a successful answer cut (or a stream
/// ended) before its report, output tokens are estimated from the text
/// delivered and, when no input was reported, input tokens from the prompt's
/// bytes (the provider bills the prompt it was sent however the answer ends).
/// Estimates are counted as such.
fn measured_usage(m: &Metrics, ctx: &Ctx, labels: [&str; 3]) -> Option<Usage> {
    let reported = ctx.usage.usage();
    // Accounting off measures nothing, estimates included.
    if ctx.usage.complete() || ctx.usage.api.is_none() {
        return reported;
    }
    let mut usage = reported.unwrap_or_default();
    let mut estimated = 0;
    let output = ctx.usage.output_text_bytes().div_ceil(BYTES_PER_TOKEN);
    if output > usage.output {
        estimated += output - usage.output;
        usage.output = output;
    }
    // A JSON answer delivered whole without a usage member stays unmetered.
    let cut = ctx.response.aborted || ctx.response.cut.is_some() || estimated > 0;
    let answered = ctx.usage.started().is_some() && (200..300).contains(&ctx.response.status);
    if answered && cut && usage.input == 0 {
        usage.input = ctx.route.prompt_bytes.div_ceil(BYTES_PER_TOKEN);
        estimated += usage.input;
    }
    if estimated > 0 {
        m.estimated_tokens
            .with_label_values(&labels)
            .inc_by(estimated);
    }
    (usage != Usage::default()).then_some(usage)
}

/// The catalog price of the model that answered, or a price-only row for an
/// unlisted model the seeds priced.
fn price(state: &State, ctx: &Ctx) -> Option<Price> {
    if let Some(i) = ctx.route.model {
        return state.catalog.models.get(i).and_then(|m| m.price);
    }
    let provider = state.catalog.providers.get(ctx.route.provider?)?;
    let model = ctx.route.unlisted_model.as_deref()?;
    state
        .catalog
        .price_row(&provider.id, model)
        .map(|r| r.price)
}
