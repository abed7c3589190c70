//! Credits (SPEC §5): what a request costs in integer micro-USD, from the usage the
//! provider reported, the catalog price, and who pays.

use crate::auth::Billing;
use crate::catalog::Price;
use crate::usage::Usage;

/// The gateway's own fee, charged on top of model cost (managed keys) or alone (BYOK).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fee {
    /// Percent of the model cost, in basis points (100 = 1%).
    pub basis_points: u64,
    /// A flat fee per request, micro-USD.
    pub per_request: u64,
}

/// What a request is charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Charge {
    /// Model cost, micro-USD (0 when the provider bills the key's owner).
    pub model: u64,
    /// Gateway fee, micro-USD.
    pub fee: u64,
}

impl Charge {
    pub fn total(&self) -> u64 {
        self.model.saturating_add(self.fee)
    }
}

/// Model cost of `usage` at `price`, micro-USD, rounded half up once per request.
/// Cached input tokens use the cached price when the catalog has one.
pub fn model_cost(usage: &Usage, price: &Price) -> u64 {
    let cached = usage.cached_input.min(usage.input);
    let fresh = u128::from(usage.input - cached);
    let cached_price = price.cached_input.unwrap_or(price.input);
    let pico = fresh * u128::from(price.input)
        + u128::from(cached) * u128::from(cached_price)
        + u128::from(usage.output) * u128::from(price.output);
    u64::try_from((pico + 500_000) / 1_000_000).unwrap_or(u64::MAX)
}

/// The charge for a request (SPEC §5): managed keys pay model cost plus fee, an
/// access key's own provider key pays the fee only, passthrough is not charged.
pub fn charge(billing: Billing, usage: Option<&Usage>, price: Option<&Price>, fee: Fee) -> Charge {
    let cost = match (usage, price) {
        (Some(u), Some(p)) => model_cost(u, p),
        _ => 0,
    };
    let percent = |base: u64| {
        u64::try_from(u128::from(base) * u128::from(fee.basis_points) / 10_000).unwrap_or(u64::MAX)
    };
    match billing {
        Billing::Managed | Billing::Keyless => Charge {
            model: cost,
            fee: percent(cost).saturating_add(fee.per_request),
        },
        Billing::Byok => Charge {
            model: 0,
            fee: percent(cost).saturating_add(fee.per_request),
        },
        Billing::Passthrough => Charge::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPT4O: Price = Price {
        input: 2_500_000,
        output: 10_000_000,
        cached_input: None,
    };

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input,
            output,
            ..Usage::default()
        }
    }

    #[test]
    fn cost_is_exact_integer_micro_usd() {
        // 1M input at $2.50 + 1M output at $10 = $12.50.
        assert_eq!(model_cost(&usage(1_000_000, 1_000_000), &GPT4O), 12_500_000);
        // 11 input, 7 output: 27.5 + 70 = 97.5 → 98 (half up).
        assert_eq!(model_cost(&usage(11, 7), &GPT4O), 98);
        // Repeating small requests does not drift: each is rounded once.
        let total: u64 = (0..1000).map(|_| model_cost(&usage(400, 0), &GPT4O)).sum();
        assert_eq!(total, 1000 * 1000);
    }

    #[test]
    fn cached_tokens_use_the_cached_price() {
        let p = Price {
            cached_input: Some(1_250_000),
            ..GPT4O
        };
        let u = Usage {
            input: 1_000_000,
            cached_input: 400_000,
            ..Usage::default()
        };
        assert_eq!(model_cost(&u, &p), 600_000 * 5 / 2 + 400_000 * 5 / 4);
    }

    #[test]
    fn who_pays_what() {
        let u = usage(1_000_000, 0);
        let fee = Fee {
            basis_points: 500,
            per_request: 10,
        };
        assert_eq!(
            charge(Billing::Managed, Some(&u), Some(&GPT4O), fee),
            Charge {
                model: 2_500_000,
                fee: 125_010
            }
        );
        assert_eq!(
            charge(Billing::Byok, Some(&u), Some(&GPT4O), fee),
            Charge {
                model: 0,
                fee: 125_010
            }
        );
        assert_eq!(
            charge(Billing::Passthrough, Some(&u), Some(&GPT4O), fee),
            Charge::default()
        );
        assert_eq!(
            charge(Billing::Managed, Some(&u), None, Fee::default()),
            Charge::default()
        );
    }
}
