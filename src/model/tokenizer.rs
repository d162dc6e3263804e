//! transformers `CLIPTokenizer` through the `tokenizers` crate: from `tokenizer.json` when
//! the folder has one, otherwise assembled from `vocab.json` + `merges.txt` (Karlo ships
//! only those). Pad token and maximum length come from the folder.

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as NormSeq};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSeq;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PaddingDirection, PaddingParams, PaddingStrategy, SplitDelimiterBehavior, Tokenizer};
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use super::ModelError;

const BOS: &str = "<|startoftext|>";
const EOS: &str = "<|endoftext|>";
/// CLIP's word pattern (contractions, letter runs, single digits, other symbol runs).
const CLIP_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

pub struct ClipTokenizer {
    inner: Tokenizer,
    pub max_length: usize,
    pub pad_id: u32,
}

/// One prompt, padded to `max_length`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// True for real tokens (BOS, text, EOS), false for padding.
    pub mask: Vec<bool>,
    /// The prompt was longer than the model can read and was cut.
    pub truncated: bool,
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

impl ClipTokenizer {
    pub fn from_folder(dir: &Path) -> Result<Self, ModelError> {
        let settings = read_settings(dir)?;
        let json = dir.join("tokenizer.json");
        let mut inner = if json.is_file() {
            Tokenizer::from_file(&json).map_err(|e| tok_err(format!("{}: {e}", json.display())))?
        } else {
            build_from_vocab(dir)?
        };
        // transformers treats BOS, EOS and the pad token as special words wherever they occur
        // in a prompt: "<|endoftext|>" typed by a user is the EOS id, and with Karlo's "!" pad
        // token a "!" is the pad id and splits the word it is in.
        let mut specials = vec![BOS.to_string(), EOS.to_string()];
        if !specials.contains(&settings.pad_token) {
            specials.push(settings.pad_token.clone());
        }
        inner.add_special_tokens(specials.into_iter().map(|t| AddedToken::from(t, true))).map_err(tok_err)?;
        let pad_id = inner
            .token_to_id(&settings.pad_token)
            .ok_or_else(|| tok_err(format!("pad token {:?} is not in the vocabulary", settings.pad_token)))?;
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: settings.max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(tok_err)?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(settings.max_length),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token: settings.pad_token.clone(),
        }));
        Ok(Self { inner, max_length: settings.max_length, pad_id })
    }

    pub fn encode(&self, text: &str) -> Result<Tokens, ModelError> {
        let cleaned = basic_clean(text);
        let enc = self.inner.encode(cleaned.as_str(), true).map_err(tok_err)?;
        let ids = enc.get_ids().to_vec();
        let mask = enc.get_attention_mask().iter().map(|&m| m != 0).collect();
        Ok(Tokens { ids, mask, truncated: !enc.get_overflowing().is_empty() })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

struct Settings {
    pad_token: String,
    max_length: usize,
}

/// Pad token and length from `tokenizer_config.json` / `special_tokens_map.json`; CLIP's
/// defaults (pad = EOS, 77) when neither says.
fn read_settings(dir: &Path) -> Result<Settings, ModelError> {
    let read = |name: &str| -> Result<Option<serde_json::Value>, ModelError> {
        let p = dir.join(name);
        if !p.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(|e| tok_err(format!("{}: {e}", p.display())))?;
        serde_json::from_str(&text).map(Some).map_err(|e| tok_err(format!("{}: {e}", p.display())))
    };
    let config = read("tokenizer_config.json")?;
    let special = read("special_tokens_map.json")?;
    let token_str = |v: &serde_json::Value| -> Option<String> {
        v.as_str().map(str::to_string).or_else(|| v.get("content").and_then(|c| c.as_str()).map(str::to_string))
    };
    let pad_token = [&config, &special]
        .iter()
        .filter_map(|doc| doc.as_ref().and_then(|d| d.get("pad_token")).and_then(token_str))
        .next()
        .unwrap_or_else(|| EOS.to_string());
    // transformers writes a huge sentinel when the length is unknown.
    let max_length = config
        .as_ref()
        .and_then(|c| c.get("model_max_length"))
        .and_then(|v| v.as_f64())
        .filter(|&v| v >= 2.0 && v <= 4096.0)
        .map(|v| v as usize)
        .unwrap_or(77);
    Ok(Settings { pad_token, max_length })
}

/// Largest vocab.json / merges.txt read (CLIP's are 1.6 MB and 0.5 MB).
const MAX_TOKENIZER_FILE: u64 = 64 << 20;

fn build_from_vocab(dir: &Path) -> Result<Tokenizer, ModelError> {
    let vocab = dir.join("vocab.json");
    let merges = dir.join("merges.txt");
    for p in [&vocab, &merges] {
        if !p.is_file() {
            return Err(ModelError::MissingFile { path: p.clone(), hint: "tokenizer file missing".into() });
        }
    }
    for p in [&vocab, &merges] {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        if len > MAX_TOKENIZER_FILE {
            return Err(tok_err(format!("{}: {len} bytes; a tokenizer file is at most {MAX_TOKENIZER_FILE}", p.display())));
        }
    }
    // An empty merges list is a valid BPE that splits every word into characters: a broken
    // download, not a tokenizer anyone trained. Refuse it rather than draw something else.
    let merges_text = std::fs::read_to_string(&merges).map_err(|e| tok_err(format!("{}: {e}", merges.display())))?;
    if !merges_text.lines().any(|l| !l.trim().is_empty() && !l.starts_with("#version")) {
        return Err(tok_err(format!("{}: no merges in the file (a broken download?)", merges.display())));
    }
    let path_str = |p: &Path| p.to_str().map(str::to_string).ok_or_else(|| tok_err("non-UTF-8 path"));
    let bpe = BPE::from_file(&path_str(&vocab)?, &path_str(&merges)?)
        .end_of_word_suffix("</w>".into())
        .unk_token(EOS.into())
        .build()
        .map_err(|e| tok_err(format!("{}: {e}", dir.display())))?;
    let mut tk = Tokenizer::new(bpe);
    let normalizer = NormSeq::new(vec![
        NFC.into(),
        Replace::new(tokenizers::normalizers::replace::ReplacePattern::Regex(r"\s+".into()), " ")
            .map_err(tok_err)?
            .into(),
        Lowercase.into(),
    ]);
    tk.with_normalizer(Some(normalizer)).map_err(tok_err)?;
    let split = Split::new(SplitPattern::Regex(CLIP_PATTERN.into()), SplitDelimiterBehavior::Removed, true)
        .map_err(tok_err)?;
    tk.with_pre_tokenizer(Some(PreSeq::new(vec![split.into(), ByteLevel::new(false, true, false).into()])));
    let bos = tk.token_to_id(BOS).ok_or_else(|| tok_err("vocabulary has no <|startoftext|>"))?;
    let eos = tk.token_to_id(EOS).ok_or_else(|| tok_err("vocabulary has no <|endoftext|>"))?;
    let template = TemplateProcessing::builder()
        .try_single(format!("{BOS} $A {EOS}"))
        .map_err(tok_err)?
        .special_tokens(vec![(BOS, bos), (EOS, eos)])
        .build()
        .map_err(tok_err)?;
    tk.with_post_processor(Some(template));
    Ok(tk)
}

/// What transformers' slow `CLIPTokenizer` (the class diffusers loads) does before BPE, via
/// its `BasicTokenizer`: drop NUL, U+FFFD and control/format characters, turn any whitespace
/// into a space, and put spaces around CJK ideographs so each is its own word.
pub fn basic_clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' || c == '\u{FFFD}' || is_other_category(c) {
            continue;
        }
        if c.is_whitespace() {
            out.push(' ');
        } else if is_cjk_ideograph(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode category C* (control, format, private use) except tab, newline and carriage
/// return, which count as whitespace. Format characters are listed explicitly.
fn is_other_category(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    let u = c as u32;
    c.is_control()
        || matches!(u,
            0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
            | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

/// The CJK Unified Ideograph blocks transformers' BasicTokenizer separates.
fn is_cjk_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}
