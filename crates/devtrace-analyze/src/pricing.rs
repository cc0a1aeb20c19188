//! What LLM tokens cost: a built-in, dated price table for common models, overridable.
//!
//! Prices are US dollars per million tokens as the providers published them for their
//! standard (pay-as-you-go, non-batch) APIs; the table says on which date it was taken
//! ([`BUILT_IN_AS_OF`]). A model is found by its name with any date or version suffix (the
//! longest listed prefix wins: `gpt-4o-mini-2024-07-18` is `gpt-4o-mini`, `claude-sonnet-4-5-
//! 20250929` is `claude-sonnet-4-5`). Prices change: a user's configuration can replace or add
//! any model ([`PriceTable::with_override`]), and every cost devtrace prints says which table
//! it used.

use serde::Serialize;

/// US dollars per million tokens.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Price {
    /// Uncached input.
    pub input: f64,
    /// Input read from the provider's prompt cache.
    pub cache_read: f64,
    /// Input written to the prompt cache (Anthropic charges it above plain input; OpenAI and
    /// Google write caches at the input price).
    pub cache_write: f64,
    /// Input written to the 1-hour prompt cache (Anthropic: 2 × input; providers without the
    /// option: the `cache_write` price).
    #[serde(default)]
    pub cache_write_1h: f64,
    pub output: f64,
}

/// Tokens of one request (or a sum of requests), by how they are priced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TokenUse {
    /// Input that was neither read from nor written to the cache.
    pub input: u64,
    pub cache_read: u64,
    /// Every cache write, of which `cache_write_1h` were for the 1-hour lifetime.
    pub cache_write: u64,
    pub cache_write_1h: u64,
    pub output: u64,
}

impl TokenUse {
    /// All input: uncached, read from and written to the cache.
    pub fn context(&self) -> u64 {
        self.input + self.cache_read + self.cache_write
    }

    /// The sum of two uses.
    pub fn plus(self, other: TokenUse) -> TokenUse {
        TokenUse {
            input: self.input + other.input,
            cache_read: self.cache_read + other.cache_read,
            cache_write: self.cache_write + other.cache_write,
            cache_write_1h: self.cache_write_1h + other.cache_write_1h,
            output: self.output + other.output,
        }
    }
}

impl Price {
    /// The cost of `tokens` at this price, in dollars.
    pub fn cost(&self, tokens: TokenUse) -> f64 {
        (tokens.input as f64 * self.input
            + tokens.cache_read as f64 * self.cache_read
            + tokens.cache_write.saturating_sub(tokens.cache_write_1h) as f64 * self.cache_write
            + tokens.cache_write_1h.min(tokens.cache_write) as f64 * self.cache_write_1h
            + tokens.output as f64 * self.output)
            / 1e6
    }
}

/// The date the built-in prices were taken from the providers' price pages. Sources:
/// <https://openai.com/api/pricing/>, <https://docs.anthropic.com/en/docs/about-claude/pricing>
/// (cache writes: 5-minute lifetime 1.25 × input, 1-hour lifetime 2 × input; cache reads
/// 0.1 × input), <https://ai.google.dev/gemini-api/docs/pricing>.
pub const BUILT_IN_AS_OF: &str = "2025-11-24";

/// (model name prefix, input, cache read, cache write, output), $ per million tokens.
const BUILT_IN: &[(&str, f64, f64, f64, f64)] = &[
    // OpenAI (cached input at the published discount; cache writes at the input price).
    ("gpt-5-nano", 0.05, 0.005, 0.05, 0.40),
    ("gpt-5-mini", 0.25, 0.025, 0.25, 2.00),
    ("gpt-5", 1.25, 0.125, 1.25, 10.00),
    ("gpt-4.1-nano", 0.10, 0.025, 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 0.10, 0.40, 1.60),
    ("gpt-4.1", 2.00, 0.50, 2.00, 8.00),
    ("gpt-4o-mini", 0.15, 0.075, 0.15, 0.60),
    ("gpt-4o", 2.50, 1.25, 2.50, 10.00),
    ("o4-mini", 1.10, 0.275, 1.10, 4.40),
    ("o3-mini", 1.10, 0.55, 1.10, 4.40),
    ("o3", 2.00, 0.50, 2.00, 8.00),
    ("o1", 15.00, 7.50, 15.00, 60.00),
    // Anthropic (cache write: the 5-minute cache, 1.25 × input; read 0.1 × input).
    ("claude-opus-4-5", 5.00, 0.50, 6.25, 25.00),
    ("claude-opus-4-1", 15.00, 1.50, 18.75, 75.00),
    ("claude-opus-4", 15.00, 1.50, 18.75, 75.00),
    ("claude-sonnet-4-5", 3.00, 0.30, 3.75, 15.00),
    ("claude-sonnet-4", 3.00, 0.30, 3.75, 15.00),
    ("claude-3-7-sonnet", 3.00, 0.30, 3.75, 15.00),
    ("claude-3-5-sonnet", 3.00, 0.30, 3.75, 15.00),
    ("claude-haiku-4-5", 1.00, 0.10, 1.25, 5.00),
    ("claude-3-5-haiku", 0.80, 0.08, 1.00, 4.00),
    ("claude-3-haiku", 0.25, 0.03, 0.30, 1.25),
    ("claude-3-opus", 15.00, 1.50, 18.75, 75.00),
    // Google (prompts up to 200k tokens; context caching read price).
    ("gemini-2.5-pro", 1.25, 0.31, 1.25, 10.00),
    ("gemini-2.5-flash-lite", 0.10, 0.025, 0.10, 0.40),
    ("gemini-2.5-flash", 0.30, 0.075, 0.30, 2.50),
    ("gemini-2.0-flash-lite", 0.075, 0.075, 0.075, 0.30),
    ("gemini-2.0-flash", 0.10, 0.025, 0.10, 0.40),
];

/// Prices by model, with the date they are from.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    /// Where the prices come from: `built-in 2025-11-24`, or `built-in 2025-11-24 + config`.
    pub source: String,
    entries: Vec<(String, Price)>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::built_in()
    }
}

impl PriceTable {
    pub fn built_in() -> Self {
        Self {
            source: format!("built-in prices of {BUILT_IN_AS_OF}"),
            entries: BUILT_IN
                .iter()
                .map(|(model, input, cache_read, cache_write, output)| {
                    (
                        (*model).to_owned(),
                        Price {
                            input: *input,
                            cache_read: *cache_read,
                            cache_write: *cache_write,
                            // Anthropic's 1-hour cache writes cost 2 × input; the others
                            // have one cache-write price.
                            cache_write_1h: if model.starts_with("claude") {
                                2.0 * *input
                            } else {
                                *cache_write
                            },
                            output: *output,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The table with `model` priced at `price` (replacing a built-in price of that name).
    pub fn with_override(mut self, model: &str, price: Price) -> Self {
        let model = model.trim().to_ascii_lowercase();
        self.entries.retain(|(m, _)| *m != model);
        self.entries.push((model, price));
        if !self.source.ends_with("+ configuration") {
            self.source.push_str(" + configuration");
        }
        self
    }

    /// The price of `model`: the entry whose name is the longest prefix of the model's name
    /// (a provider prefix like `openai/` or `anthropic.` is ignored).
    pub fn price(&self, model: &str) -> Option<Price> {
        let lower = model.trim().to_ascii_lowercase();
        // "openai/gpt-4o", "models/gemini-2.5-pro", Bedrock's "us.anthropic.claude-…-v1:0".
        let name = lower.rsplit('/').next().unwrap_or(&lower);
        let name = name.split(':').next().unwrap_or(name);
        let name = name.rsplit("anthropic.").next().unwrap_or(name);
        self.entries
            .iter()
            .filter(|(prefix, _)| {
                name.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '@', '.', '_']))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, price)| *price)
    }

    /// The cost of `tokens` sent to `model`, when the model has a price.
    pub fn cost(&self, model: &str, tokens: TokenUse) -> Option<f64> {
        self.price(model).map(|p| p.cost(tokens))
    }
}

/// "$0.0312", "$1.24", "$1,204": dollars with the precision a reader needs.
pub fn format_dollars(amount: f64) -> String {
    if amount >= 1000.0 {
        let whole = amount.round() as u64;
        let mut digits = whole.to_string();
        let mut at = digits.len();
        while at > 3 {
            at -= 3;
            digits.insert(at, ',');
        }
        format!("${digits}")
    } else if amount >= 1.0 {
        format!("${amount:.2}")
    } else if amount >= 0.01 {
        format!("${amount:.3}")
    } else {
        format!("${amount:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_found_by_their_longest_prefix() {
        let table = PriceTable::built_in();
        assert_eq!(table.price("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(table.price("gpt-4o-2024-08-06").unwrap().input, 2.50);
        assert_eq!(table.price("GPT-4o").unwrap().output, 10.0);
        assert_eq!(
            table
                .price("claude-sonnet-4-5-20250929")
                .unwrap()
                .cache_write,
            3.75
        );
        assert_eq!(
            table
                .price("us.anthropic.claude-3-5-haiku-20241022-v1:0")
                .map(|p| p.input),
            Some(0.80),
            "a Bedrock model id"
        );
        assert_eq!(table.price("openai/gpt-4.1-mini").unwrap().output, 1.60);
        assert!(table.price("gpt-4oo").is_none(), "not a version suffix");
        assert!(table.price("llama3").is_none());
    }

    #[test]
    fn costs_price_each_kind_of_token_apart() {
        let table = PriceTable::built_in();
        let cost = table
            .cost(
                "claude-sonnet-4-5",
                TokenUse {
                    input: 1_000_000,
                    cache_read: 1_000_000,
                    cache_write: 1_000_000,
                    cache_write_1h: 0,
                    output: 1_000_000,
                },
            )
            .unwrap();
        assert!((cost - (3.0 + 0.30 + 3.75 + 15.0)).abs() < 1e-9);
        // Of two million cache writes, one for the 1-hour lifetime: at 2 × input.
        let writes = table
            .cost(
                "claude-sonnet-4-5",
                TokenUse {
                    cache_write: 2_000_000,
                    cache_write_1h: 1_000_000,
                    ..TokenUse::default()
                },
            )
            .unwrap();
        assert!((writes - (3.75 + 6.0)).abs() < 1e-9);
        assert_eq!(table.price("gpt-4o").unwrap().cache_write_1h, 2.50);
    }

    #[test]
    fn an_override_replaces_a_price_and_says_so() {
        let price = Price {
            input: 1.0,
            cache_read: 0.5,
            cache_write: 1.0,
            cache_write_1h: 1.0,
            output: 2.0,
        };
        let table = PriceTable::built_in()
            .with_override("gpt-4o", price)
            .with_override("my-local-model", price);
        assert_eq!(table.price("gpt-4o-2024-08-06"), Some(price));
        assert_eq!(table.price("my-local-model"), Some(price));
        assert!(table.source.ends_with("+ configuration"));
        assert_eq!(format_dollars(0.03125), "$0.031");
        assert_eq!(format_dollars(1204.4), "$1,204");
        assert_eq!(format_dollars(0.00042), "$0.0004");
    }
}
