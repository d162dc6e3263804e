//! Mutated inputs through the loaders a user's files reach: a few thousand deterministic
//! corruptions (flipped bytes, truncations, inserted junk, numbers made huge, negative or
//! zero) of the tiny model's configs, safetensors headers and tokenizer files, of a PNG with a
//! recipe, of JPEG, WebP, BMP and GIF files, and of a recipe's JSON. Every one must end in Ok or a one-line error: no panic, no
//! abort, no runaway allocation. A regression net in the normal suite, and the fuzz script:
//! `dist/fuzz.sh` runs the same targets with `UNCLIP_FUZZ_EXECS` executions each (a million
//! for the README's counts). Inputs that load are kept as seeds for later mutations, so the
//! search walks on from accepted files; it is not coverage-guided (see the README).

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use common::{copy_dir, cpu, tiny_model};
use unclip::model::folder::ModelFolder;
use unclip::pipeline::Picture;
use unclip::recipe::Recipe;
use unclip::train::world::SplitMix64;

/// Numbers a mutation writes over a number in a text file.
const NUMBERS: [&str; 8] = ["0", "-1", "4000000000", "1e30", "NaN", "3.5", "99999999999999999999", "65536"];

/// Executions per target: the default (the normal suite), or `UNCLIP_FUZZ_EXECS`.
fn execs(default: usize) -> usize {
    std::env::var("UNCLIP_FUZZ_EXECS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Accepted inputs kept as seeds, at most this many per target.
const MAX_SEEDS: usize = 256;

fn below(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// One random corruption of `bytes`. `text` files also get their numbers replaced.
fn mutate(bytes: &[u8], rng: &mut SplitMix64, text: bool) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let kind = below(rng, if text { 6 } else { 5 });
    match kind {
        0 => {
            for _ in 0..1 + below(rng, 4) {
                let i = below(rng, b.len());
                if let Some(v) = b.get_mut(i) {
                    *v ^= 1 << below(rng, 8);
                }
            }
        }
        1 => b.truncate(below(rng, b.len())),
        2 => {
            let at = below(rng, b.len() + 1);
            let junk: Vec<u8> = (0..1 + below(rng, 16)).map(|_| rng.next_u64() as u8).collect();
            b.splice(at..at, junk);
        }
        3 => {
            let i = below(rng, b.len());
            if let Some(v) = b.get_mut(i) {
                *v = [0u8, 0xff, b'"', b'{', b'}', b',', b':'][below(rng, 7)];
            }
        }
        4 => {
            // Duplicate a slice (repeated keys, doubled headers).
            let (i, n) = (below(rng, b.len()), 1 + below(rng, 64));
            let end = (i + n).min(b.len());
            let piece = b[i..end].to_vec();
            b.splice(i..i, piece);
        }
        _ => {
            // Replace the k-th number in the text.
            let s = String::from_utf8_lossy(&b).into_owned();
            let starts: Vec<usize> = s
                .char_indices()
                .filter(|&(i, c)| c.is_ascii_digit() && (i == 0 || !s.as_bytes()[i - 1].is_ascii_digit()))
                .map(|(i, _)| i)
                .collect();
            if let Some(&start) = starts.get(below(rng, starts.len())) {
                let end = s[start..].find(|c: char| !c.is_ascii_digit() && c != '.').map_or(s.len(), |e| start + e);
                let mut t = s[..start].to_string();
                t.push_str(NUMBERS[below(rng, NUMBERS.len())]);
                t.push_str(&s[end..]);
                b = t.into_bytes();
            }
        }
    }
    b
}

/// Runs `load` on `n` mutations of the file at `rel` in a fresh copy of the tiny model.
fn mutate_model_file(name: &str, rel: &str, n: usize, text: bool, load: impl Fn(&Path) -> Result<(), String>) {
    mutate_file_of(&tiny_model(), name, rel, n, text, load)
}

fn mutate_file_of(
    model: &Path,
    name: &str,
    rel: &str,
    n: usize,
    text: bool,
    load: impl Fn(&Path) -> Result<(), String>,
) {
    let dir = std::env::temp_dir().join(format!("unclip-mutations-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(model, &dir);
    let file = dir.join(rel);
    let original = std::fs::read(&file).expect("fixture file");
    let mut rng = SplitMix64::new(0x5eed ^ name.len() as u64);
    let (mut ok, mut refused) = (0, 0);
    let mut seeds = vec![original];
    let n = execs(n);
    for i in 0..n {
        let parent = below(&mut rng, seeds.len());
        let bytes = mutate(&seeds[parent], &mut rng, text);
        std::fs::write(&file, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| load(&dir))) {
            Ok(Ok(())) => {
                ok += 1;
                if seeds.len() < MAX_SEEDS && bytes != seeds[parent] {
                    seeds.push(bytes);
                }
            }
            Ok(Err(e)) => {
                assert!(!e.contains('\n') && !e.is_empty(), "{name} #{i}: not one line: {e:?}");
                refused += 1;
            }
            Err(_) => {
                let _ = std::fs::write(dir.join("crash.bin"), &bytes);
                panic!("{name} #{i}: the loader panicked (input kept in {})", dir.display());
            }
        }
    }
    println!("{name}: {n} mutations, {ok} loaded, {refused} refused with one line");
    assert!(refused > 0, "{name}: no mutation was refused, so none was checked");
    let _ = std::fs::remove_dir_all(&dir);
}

fn open(dir: &Path) -> Result<ModelFolder, String> {
    ModelFolder::open(dir).map_err(|e| e.to_string())
}

#[test]
fn mutated_decoder_configs_build_or_are_refused_in_one_line() {
    mutate_model_file("decoder-config", "decoder/config.json", 3000, true, |dir| {
        open(dir)?.decoder(&cpu(), burn::tensor::DType::F32).map(|_| ()).map_err(|e| e.to_string())
    });
}

#[test]
fn mutated_prior_and_text_configs_build_or_are_refused_in_one_line() {
    mutate_model_file("prior-config", "prior/config.json", 2000, true, |dir| {
        open(dir)?.prior(&cpu(), burn::tensor::DType::F32).map(|_| ()).map_err(|e| e.to_string())
    });
    mutate_model_file("text-config", "text_encoder/config.json", 2000, true, |dir| {
        open(dir)?.text_encoder(&cpu(), burn::tensor::DType::F32).map(|_| ()).map_err(|e| e.to_string())
    });
    mutate_model_file("scheduler-config", "decoder_scheduler/scheduler_config.json", 2000, true, |dir| {
        let cfg = open(dir)?.scheduler("decoder_scheduler").map_err(|e| e.to_string())?;
        unclip::diffusion::unclip_scheduler::UnclipScheduler::new(&cfg).map(|_| ()).map_err(|e| e.to_string())
    });
}

#[test]
fn mutated_autoregressive_prior_configs_build_or_are_refused_in_one_line() {
    // Only the shipped model has the autoregressive prior.
    let shipped = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/model");
    mutate_file_of(&shipped, "ar-prior-config", "ar_prior/config.json", 2000, true, |dir| {
        open(dir)?.ar_prior(&cpu(), burn::tensor::DType::F32).map(|_| ()).map_err(|e| e.to_string())
    });
}

#[test]
fn mutated_safetensors_headers_load_or_are_refused_in_one_line() {
    // Mutations of the whole file mostly land in the tensor data, which any bytes are valid
    // for; this keeps them in the 8-byte length and the JSON header.
    let dir = tiny_model();
    let weights = std::fs::read(dir.join("text_proj/diffusion_pytorch_model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let (head, data) = weights.split_at(8 + header_len);
    let data = data.to_vec();
    let rng = std::sync::Mutex::new(SplitMix64::new(77));
    mutate_model_file("safetensors-header", "text_proj/diffusion_pytorch_model.safetensors", 3000, false, |dir| {
        // Replace the mutated file with a mutated header over the intact data.
        let mut bytes = mutate(head, &mut rng.lock().unwrap(), true);
        bytes.extend_from_slice(&data);
        std::fs::write(dir.join("text_proj/diffusion_pytorch_model.safetensors"), bytes).unwrap();
        open(dir)?.text_proj(&cpu(), burn::tensor::DType::F32).map(|_| ()).map_err(|e| e.to_string())
    });
}

#[test]
fn mutated_pytorch_pickles_load_or_are_refused_in_one_line() {
    let model = common::fixtures_dir().join("tiny_unclip_bin");
    mutate_file_of(&model, "pickle", "text_proj/diffusion_pytorch_model.bin", 2000, false, |dir| {
        open(dir)?.text_proj(&cpu(), burn::tensor::DType::F32).map(|_| ()).map_err(|e| e.to_string())
    });
}

#[test]
fn mutated_tokenizer_files_load_or_are_refused_in_one_line() {
    for (name, rel) in [("vocab", "tokenizer/vocab.json"), ("merges", "tokenizer/merges.txt")] {
        mutate_model_file(name, rel, 2000, true, |dir| {
            let tok = open(dir)?.tokenizer().map_err(|e| e.to_string())?;
            tok.encode("a small red star on a blue background").map(|_| ()).map_err(|e| e.to_string())
        });
    }
}

#[test]
fn mutated_pngs_and_recipes_decode_or_are_refused() {
    let picture = Picture { width: 8, height: 8, rgb: (0..192).map(|i| (i * 7) as u8).collect() };
    let recipe = Recipe::new(
        "default".into(),
        0,
        unclip::pipeline::Request::Generate(unclip::pipeline::GenerateParams::default()),
    );
    let png = unclip::image_io::encode_png(&picture, Some(&recipe)).unwrap();
    let json = recipe.to_json();
    let mut rng = SplitMix64::new(99);
    let (mut decoded, mut recipes) = (0, 0);
    let n = execs(20_000);
    for i in 0..n {
        let bytes = mutate(&png, &mut rng, false);
        let r = catch_unwind(|| {
            let pic = unclip::image_io::decode_picture(&bytes);
            if let Err(e) = &pic {
                assert!(!e.contains('\n'), "not one line: {e:?}");
            }
            (pic.is_ok(), unclip::image_io::read_recipe(&bytes).is_some())
        });
        let (d, r) = r.unwrap_or_else(|_| panic!("PNG mutation #{i} panicked"));
        decoded += d as usize;
        recipes += r as usize;
        let text = mutate(json.as_bytes(), &mut rng, true);
        let parsed = catch_unwind(|| Recipe::from_json(&String::from_utf8_lossy(&text)));
        assert!(parsed.is_ok(), "recipe mutation #{i} panicked");
    }
    println!("png: {n} mutations, {decoded} decoded, {recipes} with a recipe");
    println!("recipe-json: {n} mutations, none panicked");
    assert!(decoded < n, "some mutation must be refused");
}

#[test]
fn mutated_jpeg_webp_bmp_and_gif_files_decode_or_are_refused_in_one_line() {
    // The other formats a user can drop on the window, through the same loader as PNG.
    let rgb = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, ((x ^ y) * 8) as u8]));
    let n = execs(3_000);
    let mut rng = SplitMix64::new(123);
    for (name, format) in [
        ("jpeg", image::ImageFormat::Jpeg),
        ("webp", image::ImageFormat::WebP),
        ("bmp", image::ImageFormat::Bmp),
        ("gif", image::ImageFormat::Gif),
    ] {
        let mut seed = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(rgb.clone()).write_to(&mut seed, format).expect("encode the seed image");
        let seed = seed.into_inner();
        assert!(unclip::image_io::decode_picture(&seed).is_ok(), "{name}: the seed itself must decode");
        let mut decoded = 0;
        for i in 0..n {
            let bytes = mutate(&seed, &mut rng, false);
            let result = catch_unwind(|| unclip::image_io::decode_picture(&bytes));
            match result {
                Ok(Ok(_)) => decoded += 1,
                Ok(Err(e)) => assert!(!e.contains('\n'), "{name} #{i}: not one line: {e:?}"),
                Err(_) => panic!("{name} mutation #{i} panicked"),
            }
        }
        println!("{name}: {n} mutations, {decoded} decoded, {} refused with one line", n - decoded);
        assert!(decoded < n, "{name}: some mutation must be refused");
    }
}

#[test]
fn a_tensor_name_with_a_newline_is_refused_in_one_line() {
    // Found by dist/fuzz.sh (safetensors-header #511700): the name went into the message raw.
    let dir = std::env::temp_dir().join(format!("unclip-mutations-newline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&tiny_model(), &dir);
    let file = dir.join("text_proj/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let renamed = header.replacen("\"learned_classifier_free_guidance_embeddings\"", "\"lear\\ned_classifier_free_guidance_embeddings\"", 1);
    assert_ne!(renamed, header);
    let mut out = (renamed.len() as u64).to_le_bytes().to_vec();
    out.extend(renamed.as_bytes());
    out.extend(&bytes[8 + n..]);
    std::fs::write(&file, out).unwrap();
    let err = match open(&dir).and_then(|f| f.text_proj(&cpu(), burn::tensor::DType::F32).map_err(|e| e.to_string())) {
        Ok(_) => panic!("a renamed tensor must be refused"),
        Err(e) => e,
    };
    assert!(!err.contains('\n') && err.contains("unexpected tensor"), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
