//! A recipe: everything needed to make a picture again, saved in its PNG and in the gallery.

use serde::{Deserialize, Serialize};

use crate::pipeline::Request;

/// The request that made a picture, its input images named by their paths.
pub type Operation = Request<String>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub version: u32,
    /// The model folder, or "default" for the shipped model.
    pub model: String,
    /// Which picture of the batch this is.
    pub index: usize,
    pub operation: Operation,
}

impl Recipe {
    pub const VERSION: u32 = 1;

    pub fn new(model: String, index: usize, operation: Operation) -> Self {
        Self { version: Self::VERSION, model, index, operation }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("not an unclip recipe: {e}"))
    }

    /// The A1111-style `parameters` text: the prompt, then "Key: value" pairs.
    pub fn parameters_text(&self) -> String {
        let stage = |p: &crate::pipeline::StageParams| {
            format!("{} steps, CFG scale {}, sampler {:?}, eta {}", p.steps, p.guidance, p.sampler, p.eta)
        };
        match &self.operation {
            Operation::Generate(g) => format!(
                "{}\nPrior: {}, Decoder: {}, Super-res steps: {}, Seed: {}{}, Best of: {}, Model: {}",
                g.prompt,
                match g.prior_kind {
                    crate::pipeline::PriorKind::Diffusion => stage(&g.prior),
                    crate::pipeline::PriorKind::Autoregressive =>
                        format!("autoregressive, CFG scale {}, temperature {}", g.prior.guidance, g.temperature),
                },
                stage(&g.decoder),
                g.super_res_steps,
                g.seeds.prior,
                g.seeds.decoder.map(|d| format!(", Decoder seed: {d}")).unwrap_or_default(),
                g.best_of,
                self.model
            ),
            Operation::Variations { source, params } => format!(
                "variations of {source}\nDecoder: {}, Super-res steps: {}, Seed: {}, Model: {}",
                stage(&params.decoder),
                params.super_res_steps,
                params.seed,
                self.model
            ),
            Operation::Interpolate { a, b, theta, start, params } => format!(
                "interpolation {a} → {b} at θ {theta}\nStart: {start:?}, Decoder: {}, Seed: {}, Model: {}",
                stage(&params.decoder),
                params.seed,
                self.model
            ),
            Operation::TextDiff { source, to, from, theta, params } => format!(
                "text diff of {source}: \"{from}\" → \"{to}\" at θ {theta}\nDecoder: {}, Seed: {}, Model: {}",
                stage(&params.decoder),
                params.seed,
                self.model
            ),
        }
    }
}
