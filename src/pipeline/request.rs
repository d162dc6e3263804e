//! One request type for every unCLIP operation: the CLI builds it from arguments, the app's
//! queue from its panels, the worker runs it, and a recipe is the same request with its
//! images named instead of held (`Request<String>`), saved in each PNG.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ops::Generated;
use super::{Control, DecodeParams, Engine, GenerateParams, Picture, PipelineError, StartLatent};

/// How a recipe writes an interpolation end given as a caption (an image end is its path).
pub const PROMPT_PREFIX: &str = "prompt: ";

/// One end of an interpolation: an image (`I`: held, or named in a recipe) or a caption,
/// turned into an embedding by the prior (seeded by the decode seed).
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint<I = Picture> {
    Image(I),
    Prompt(String),
}

/// A unCLIP operation and its parameters. `I` is how an input image is carried: a
/// [`Picture`] to run, its name or path (`String`) in a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[serde(bound(serialize = "I: Serialize, Endpoint<I>: Serialize"))]
#[serde(bound(deserialize = "I: Deserialize<'de>, Endpoint<I>: Deserialize<'de>"))]
pub enum Request<I = Picture> {
    Generate(GenerateParams),
    Variations { source: I, params: DecodeParams },
    Interpolate { a: Endpoint<I>, b: Endpoint<I>, theta: f32, start: StartLatent, params: DecodeParams },
    TextDiff { source: I, to: String, from: String, theta: f32, params: DecodeParams },
}

impl<I> Endpoint<I> {
    pub fn map<J>(self, f: &mut impl FnMut(I) -> J) -> Endpoint<J> {
        match self {
            Endpoint::Image(i) => Endpoint::Image(f(i)),
            Endpoint::Prompt(p) => Endpoint::Prompt(p),
        }
    }
}

impl<I> Request<I> {
    /// The same request with each input image replaced by `f(image)`, e.g. pictures by their
    /// names for the recipe.
    pub fn map_images<J>(self, mut f: impl FnMut(I) -> J) -> Request<J> {
        match self {
            Request::Generate(p) => Request::Generate(p),
            Request::Variations { source, params } => Request::Variations { source: f(source), params },
            Request::Interpolate { a, b, theta, start, params } => {
                Request::Interpolate { a: a.map(&mut f), b: b.map(&mut f), theta, start, params }
            }
            Request::TextDiff { source, to, from, theta, params } => {
                Request::TextDiff { source: f(source), to, from, theta, params }
            }
        }
    }
}

impl<I: Clone, N: Clone> Request<(I, N)> {
    /// A request whose images carry two things (a picture and the name its recipe records)
    /// as two requests: the one to run, and the recipe's.
    pub fn split(self) -> (Request<I>, Request<N>) {
        (self.clone().map_images(|(i, _)| i), self.map_images(|(_, n)| n))
    }
}

impl Engine {
    /// Runs any request, on a worker of the thread pool the CPU kernels split their work over.
    /// From any other thread, each of the thousands of parallel operations in a request hands
    /// its work to the pool and puts the caller to sleep until it is done: `perf` put a fifth
    /// of a shipped-model run in waking threads, and running on a worker (where a parallel
    /// operation keeps one half and offers the other) made it 1.12–1.22 s → 0.81–1.10 s.
    pub fn run(&mut self, request: &Request<Picture>, ctl: &mut Control) -> Result<Generated, PipelineError> {
        rayon::scope(|_| match request {
            Request::Generate(p) => self.text_to_image(p, ctl),
            Request::Variations { source, params } => self.variations(source, params, ctl),
            Request::Interpolate { a, b, theta, start, params } => self.interpolate(a, b, *theta, *start, params, ctl),
            Request::TextDiff { source, to, from, theta, params } => {
                self.text_diff(source, to, from, *theta, params, ctl)
            }
        })
    }
}

// A recipe names an end as its path, or as the caption after `PROMPT_PREFIX` (the format
// recipes have had since the first release).
impl std::fmt::Display for Endpoint<String> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Image(path) => f.write_str(path),
            Endpoint::Prompt(text) => write!(f, "{PROMPT_PREFIX}{text}"),
        }
    }
}

impl Serialize for Endpoint<String> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.strip_prefix(PROMPT_PREFIX) {
            Some(caption) => Endpoint::Prompt(caption.to_string()),
            None => Endpoint::Image(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_names_interpolation_ends_as_paths_or_prefixed_captions() {
        let r: Request<String> = Request::Interpolate {
            a: Endpoint::Image("a.png".into()),
            b: Endpoint::Prompt("a red star".into()),
            theta: 0.5,
            start: StartLatent::Fixed,
            params: DecodeParams::default(),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""a":"a.png""#) && json.contains(r#""b":"prompt: a red star""#), "{json}");
        assert_eq!(serde_json::from_str::<Request<String>>(&json).unwrap(), r);
    }

    #[test]
    fn mapping_images_keeps_everything_else() {
        let r: Request<u32> = Request::TextDiff {
            source: 7,
            to: "a blue star".into(),
            from: "a red star".into(),
            theta: 0.25,
            params: DecodeParams::default(),
        };
        let named = r.clone().map_images(|i| format!("#{i}"));
        assert!(matches!(&named, Request::TextDiff { source, theta: 0.25, .. } if source == "#7"), "{named:?}");
        assert_eq!(named.map_images(|s| s[1..].parse::<u32>().unwrap()), r);
    }
}
