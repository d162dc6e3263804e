//! Writes a CLIP BPE tokenizer (`vocab.json` + `merges.txt` + configs, as transformers'
//! `CLIPTokenizer` reads them) for a small closed vocabulary: the 256 byte symbols, the same
//! with the end-of-word marker, one merge chain per word, then the two special tokens.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};

pub const BOS: &str = "<|startoftext|>";
pub const EOS: &str = "<|endoftext|>";

/// GPT-2/CLIP's byte → printable character table, in CLIP's vocabulary order.
fn byte_symbols() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    chars.into_iter().filter_map(char::from_u32).collect()
}

/// The tokenizer's ids of interest.
#[derive(Debug, Clone, Copy)]
pub struct TokenizerInfo {
    pub vocab_size: usize,
    pub bos_id: usize,
    pub eos_id: usize,
}

/// Writes the tokenizer folder for `words` (lower-case ASCII) and returns its ids.
pub fn write_tokenizer(
    dir: &Path,
    words: &[&str],
    max_length: usize,
) -> std::io::Result<TokenizerInfo> {
    std::fs::create_dir_all(dir)?;
    let symbols = byte_symbols();
    let mut vocab: Vec<String> = symbols.iter().map(|c| c.to_string()).collect();
    vocab.extend(symbols.iter().map(|c| format!("{c}</w>")));
    let mut merges: Vec<(String, String)> = Vec::new();
    let mut seen: BTreeSet<String> = vocab.iter().cloned().collect();
    for word in words {
        // Left-to-right chain: w₀w₁ → (w₀w₁)w₂ → … with the last symbol carrying </w>.
        let chars: Vec<String> = word.chars().map(|c| c.to_string()).collect();
        if chars.len() < 2 {
            continue;
        }
        let mut left = chars[0].clone();
        for (i, c) in chars.iter().enumerate().skip(1) {
            let right = if i + 1 == chars.len() {
                format!("{c}</w>")
            } else {
                c.clone()
            };
            let merged = format!("{left}{right}");
            if seen.insert(merged.clone()) {
                merges.push((left.clone(), right.clone()));
                vocab.push(merged.clone());
            }
            left = merged;
        }
    }
    let bos_id = vocab.len();
    vocab.push(BOS.into());
    let eos_id = vocab.len();
    vocab.push(EOS.into());

    let map: Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    std::fs::write(
        dir.join("vocab.json"),
        serde_json::to_string(&Value::Object(map))?,
    )?;
    let mut m = String::from("#version: 0.2\n");
    for (a, b) in &merges {
        m.push_str(&format!("{a} {b}\n"));
    }
    std::fs::write(dir.join("merges.txt"), m)?;
    let specials = json!({
        "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS,
    });
    std::fs::write(
        dir.join("special_tokens_map.json"),
        serde_json::to_string_pretty(&specials)?,
    )?;
    let config = json!({
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": max_length,
        "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS,
        "errors": "replace",
        "add_prefix_space": false,
        "do_lower_case": true,
        "clean_up_tokenization_spaces": true,
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(TokenizerInfo {
        vocab_size: vocab.len(),
        bos_id,
        eos_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_covers_every_byte_once() {
        let s = byte_symbols();
        assert_eq!(s.len(), 256);
        let set: BTreeSet<char> = s.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(s[0], '!');
    }
}
