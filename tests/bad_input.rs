//! Bad input through the command line, as a user or a broken download gives it: each row is
//! a file or an argument, the exit code and a fragment of the one error line expected. No
//! row may panic or abort, and none may write its output file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, fixtures_dir, tiny_model};

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let d = std::env::temp_dir().join(format!("unclip-bad-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}


/// A copy of the tiny model with one file changed by `edit`.
fn broken_model(root: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = root.join(name);
    copy_dir(&tiny_model(), &dir);
    edit(&dir);
    dir
}

/// Sets `key` in a component's JSON config to `value` (raw JSON).
fn set_config(dir: &Path, file: &str, key: &str, value: &str) {
    let path = dir.join(file);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v[key] = serde_json::from_str(value).unwrap();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
}

/// A PNG whose header claims `w` × `h` pixels (with valid CRCs) and holds almost nothing.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

struct Row {
    args: Vec<String>,
    model: PathBuf,
    env: Vec<(&'static str, String)>,
    code: i32,
    says: &'static str,
}

fn row(args: &[&str], code: i32, says: &'static str) -> Row {
    Row { args: args.iter().map(|s| s.to_string()).collect(), model: tiny_model(), env: Vec::new(), code, says }
}

#[test]
fn every_bad_input_gets_one_clear_line_no_panic_and_no_file() {
    let s = Scratch::new();
    let root = &s.0;
    let out = root.join("out.png");
    let out_s = out.display().to_string();
    let img = fixtures_dir().join("test_image.png").display().to_string();
    let notes = root.join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let bomb = root.join("bomb.png");
    std::fs::write(&bomb, png_claiming(100_000, 100_000)).unwrap();
    let (notes, bomb) = (notes.display().to_string(), bomb.display().to_string());
    let many: String = (0..65).map(|i| format!("{:.3}", i as f32 / 64.0)).collect::<Vec<_>>().join(",");

    // A quick generate (3/3/0 steps) with `extra` flags, which replace the quick ones.
    let g = |extra: &[&str], code: i32, says: &'static str| {
        let mut a = vec!["generate", "a red circle", "-o", &out_s];
        for (flag, value) in [("--prior-steps", "3"), ("--decoder-steps", "3"), ("--sr-steps", "0")] {
            if !extra.contains(&flag) {
                a.extend([flag, value]);
            }
        }
        a.extend_from_slice(extra);
        row(&a, code, says)
    };
    let mut rows = vec![
        // Numbers out of range: refused before any network runs.
        g(&["--prior-guidance", "inf"], 1, "prior guidance must be a number"),
        g(&["--decoder-guidance", "1e30"], 1, "decoder guidance must be a number"),
        g(&["--prior-guidance", "NaN"], 1, "prior guidance must be a number"),
        g(&["--prior-guidance=-1"], 1, "prior guidance must be a number"),
        g(&["--best-of", "0"], 1, "best-of must be 1..=16"),
        // The autoregressive prior: the tiny model has none; its temperature is checked.
        g(&["--prior", "ar"], 1, "no autoregressive prior"),
        g(&["--prior", "ar", "--temperature", "0"], 1, "temperature must be in (0, 10]"),
        g(&["--prior", "ar", "--temperature", "NaN"], 1, "temperature must be in (0, 10]"),
        g(&["--temperature", "0.5"], 1, "autoregressive prior only"),
        g(&["--prior", "lstm"], 2, "unknown prior"),
        g(&["--best-of", "100000"], 1, "best-of must be 1..=16"),
        g(&["-n", "0"], 1, "number of images must be 1..=64"),
        g(&["-n", "65"], 1, "number of images must be 1..=64"),
        g(&["--eta", "0.5"], 1, "η applies to the DDIM sampler"),
        g(&["--sampler", "ddim", "--eta", "2"], 1, "η must be in [0, 1]"),
        g(&["--sampler", "ddim", "--eta", "nan"], 1, "η must be in [0, 1]"),
        g(&["--prior-steps", "0"], 1, "prior steps must be 2..=1000"),
        g(&["--decoder-steps", "1"], 1, "decoder steps must be 2..=1000"),
        g(&["--decoder-steps", "100000"], 1, "decoder steps must be 2..=1000"),
        g(&["--sr-steps", "1"], 1, "super-resolution steps must be 0"),
        // Arguments clap refuses.
        g(&["--sampler", "euler"], 2, "unknown sampler"),
        g(&["--seed", "-5"], 2, "error:"),
        g(&["--seed", "12x"], 2, "invalid digit"),
        row(&["--device", "tpu", "generate", "x"], 2, "unknown device"),
        // Outputs are PNG files.
        row(&["generate", "x", "-o", &root.join("out.jpg").display().to_string()], 1, "use a .png name"),
        row(&["generate", "x", "-o", &root.join("out").display().to_string()], 1, "needs a .png extension"),
        // Unbounded work.
        row(&["interpolate", &img, &img, "--frames", "100000", "-o", &out_s], 1, "--frames must be 2..=64"),
        row(&["interpolate", &img, &img, "--frames", "1", "-o", &out_s], 1, "--frames must be 2..=64"),
        row(&["interpolate", &img, &img, "--theta", "-0.1", "-o", &out_s], 1, "θ must be in [0, 1]"),
        row(&["interpolate", &img, &img, "--theta", "1.5", "-o", &out_s], 1, "θ must be in [0, 1]"),
        row(&["interpolate", &img, &img, "-o", &out_s], 1, "give --theta F or --frames N"),
        row(&["interpolate", &img, &img, "--theta", "0.5", "--start", "sideways", "-o", &out_s], 2, "unknown start"),
        row(&["textdiff", &img, "--to", "x", "--theta", "0,0.5,2", "-o", &out_s], 1, "θ must be in [0, 1]"),
        row(&["textdiff", &img, "--to", "x", "--theta", "nan", "-o", &out_s], 1, "θ must be in [0, 1]"),
        row(&["textdiff", &img, "--to", "x", "--theta", &many, "-o", &out_s], 1, "give 1..=64 θ values"),
        row(&["invert", &img, "--steps", "0", "-o", &out_s], 1, "inversion steps must be 2..=1000"),
        row(&["invert", &img, "--guidance", "inf", "-o", &out_s], 1, "inversion guidance must be a number"),
        // Files that are not what they claim.
        row(&["vary", &notes, "-o", &out_s], 1, "not an image"),
        row(&["vary", &root.join("missing.png").display().to_string(), "-o", &out_s], 1, "missing.png"),
        row(&["vary", &bomb, "-o", &out_s], 1, "100000"),
    ];
    // Model references.
    let mut r = g(&[], 1, "not a folder");
    r.model = root.join("no-such-model");
    rows.push(r);
    let mut r = g(&[], 1, "huggingface-cli download kakaobrain/karlo-v1-alpha");
    r.model = PathBuf::from("kakaobrain/karlo-v1-alpha");
    r.env = vec![("HF_HUB_CACHE", root.join("empty-hub").display().to_string())];
    rows.push(r);
    // Broken model folders: every config value is checked before a network is built.
    let broken: Vec<(&str, Box<dyn FnOnce(&Path)>, &'static str)> = vec![
        ("timesteps", Box::new(|d: &Path| set_config(d, "prior_scheduler/scheduler_config.json", "num_train_timesteps", "4000000000")), "num_train_timesteps must be 2..=10000"),
        ("huge-sample", Box::new(|d: &Path| set_config(d, "decoder/config.json", "sample_size", "100000")), "sample_size must be 1..=2048"),
        ("zero-sample", Box::new(|d: &Path| set_config(d, "decoder/config.json", "sample_size", "0")), "sample_size must be 1..=2048"),
        ("zero-groups", Box::new(|d: &Path| set_config(d, "decoder/config.json", "norm_num_groups", "0")), "norm_num_groups must be 1..=1024"),
        ("zero-heads", Box::new(|d: &Path| set_config(d, "decoder/config.json", "attention_head_dim", "0")), "attention_head_dim must be"),
        ("sr-groups", Box::new(|d: &Path| set_config(d, "super_res_first/config.json", "norm_num_groups", "7")), "must be a multiple of norm_num_groups"),
        ("clip-heads", Box::new(|d: &Path| set_config(d, "text_encoder/config.json", "num_attention_heads", "0")), "num_attention_heads must be 1..=256"),
        ("prior-layers", Box::new(|d: &Path| set_config(d, "prior/config.json", "num_layers", "100000")), "num_layers must be 1..=128"),
        ("empty-merges", Box::new(|d: &Path| std::fs::write(d.join("tokenizer/merges.txt"), "#version: 0.2\n").unwrap()), "no merges in the file"),
        ("bad-json", Box::new(|d: &Path| std::fs::write(d.join("text_proj/config.json"), "{ not json").unwrap()), "invalid config"),
        ("huge-config", Box::new(|d: &Path| std::fs::write(d.join("decoder/config.json"), vec![b' '; 2 << 20]).unwrap()), "a config is at most"),
        (
            "truncated",
            Box::new(|d: &Path| {
                let p = d.join("decoder/diffusion_pytorch_model.safetensors");
                let bytes = std::fs::read(&p).unwrap();
                std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
            }),
            "runs past the end of the file",
        ),
        (
            "garbage-bin",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("decoder/diffusion_pytorch_model.safetensors")).unwrap();
                std::fs::write(d.join("decoder/diffusion_pytorch_model.bin"), b"definitely not a pickle").unwrap();
            }),
            "not a PyTorch checkpoint",
        ),
        ("no-text-encoder", Box::new(|d: &Path| std::fs::remove_dir_all(d.join("text_encoder")).unwrap()), "missing"),
    ];
    for (name, edit, says) in broken {
        let mut r = g(&[], 1, says);
        r.model = broken_model(root, name, edit);
        rows.push(r);
    }
    assert!(rows.len() >= 40, "{} rows", rows.len());

    for r in &rows {
        let mut c = Command::new(env!("CARGO_BIN_EXE_unclip"));
        if !r.args.iter().any(|a| a == "--device") {
            c.arg("--device").arg("cpu");
        }
        c.arg("--model").arg(&r.model).args(&r.args);
        for (k, v) in &r.env {
            c.env(k, v);
        }
        let st = c.output().unwrap();
        let err = String::from_utf8_lossy(&st.stderr);
        let what = format!("{:?} (model {}): {err}", r.args, r.model.display());
        assert_eq!(st.status.code(), Some(r.code), "exit code of {what}");
        assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{what}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "one error line: {what}");
        assert!(errors[0].contains(r.says) || (r.code == 2 && err.contains(r.says)), "expected “{}”: {what}", r.says);
        assert!(!out.exists(), "{what} wrote {}", out.display());
    }
}
