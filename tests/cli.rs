//! The command line run as a process on the fixture model, as a user would.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{fixtures_dir, tiny_model};

fn unclip() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unclip"));
    c.arg("--device").arg("cpu").arg("--model").arg(tiny_model());
    c
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unclip-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn generate_writes_a_png_with_its_recipe() {
    let dir = temp("gen");
    let out = dir.join("circle.png");
    let st = unclip()
        .args(["generate", "a red circle", "--seed", "0", "--prior-steps", "5", "--decoder-steps", "5", "--sr-steps", "3"])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let bytes = std::fs::read(&out).expect("png written");
    let recipe = unclip::image_io::read_recipe(&bytes).expect("recipe chunk");
    match recipe.operation {
        unclip::recipe::Operation::Generate(p) => {
            assert_eq!(p.prompt, "a red circle");
            assert_eq!((p.prior.steps, p.decoder.steps, p.super_res_steps), (5, 5, 3));
        }
        other => panic!("wrong operation {other:?}"),
    }
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_generate_run_from_a_script_logs_when_each_stage_ends() {
    // stderr is a pipe here, as in a script or a log: progress bars are hidden, so each stage
    // says when its steps are done.
    let dir = temp("log");
    let st = unclip()
        .args(["generate", "a red circle", "--prior-steps", "3", "--decoder-steps", "4", "--sr-steps", "2", "-o"])
        .arg(dir.join("a.png"))
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let err = String::from_utf8_lossy(&st.stderr);
    for line in ["prior: 3 steps done after", "decoder: 4 steps done after", "super-resolution: 2 steps done after"] {
        assert!(err.contains(line), "no `{line}` in:\n{err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn vary_interpolate_textdiff_and_invert_run_from_the_command_line() {
    let dir = temp("ops");
    let img = fixtures_dir().join("test_image.png");
    let run = |args: &[&str]| {
        let st = unclip().args(args).current_dir(&dir).output().unwrap();
        assert!(st.status.success(), "{args:?}: {}", String::from_utf8_lossy(&st.stderr));
        String::from_utf8_lossy(&st.stdout).to_string()
    };
    let img = img.to_str().unwrap();
    run(&["vary", img, "-n", "2", "--decoder-steps", "3", "--sr-steps", "2", "-o", "v.png"]);
    assert!(dir.join("v-1.png").is_file() && dir.join("v-2.png").is_file());
    run(&["interpolate", img, img, "--frames", "3", "--decoder-steps", "3", "--sr-steps", "0", "-o", "i.png"]);
    assert!(dir.join("i-3.png").is_file());
    run(&["textdiff", img, "--to", "a blue star", "--theta", "0.3", "--sampler", "ddim", "--decoder-steps", "3", "--sr-steps", "0", "-o", "t.png"]);
    assert!(dir.join("t.png").is_file());
    let out = run(&["invert", img, "--steps", "5", "-o", "r.png"]);
    assert!(out.contains("PSNR"), "{out}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_input_gives_one_line_and_a_nonzero_exit() {
    let dir = temp("bad");
    let not_image = dir.join("notes.txt");
    std::fs::write(&not_image, "hello").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["vary".into(), not_image.display().to_string()], "not an image"),
        (vec!["vary".into(), dir.join("missing.png").display().to_string()], "missing.png"),
        (
            vec![
                "textdiff".into(),
                fixtures_dir().join("test_image.png").display().to_string(),
                "--to".into(),
                "x".into(),
                "--theta".into(),
                "1.5".into(),
            ],
            "θ",
        ),
    ];
    for (args, needle) in cases {
        let st = unclip().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&st.stderr);
        assert!(!st.status.success(), "{args:?} should fail");
        let last = err.lines().filter(|l| l.starts_with("error:")).collect::<Vec<_>>();
        assert_eq!(last.len(), 1, "{args:?}: {err}");
        assert!(last[0].contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let st = Command::new(env!("CARGO_BIN_EXE_unclip"))
        .args(["--device", "cpu", "--model"])
        .arg(&dir)
        .args(["generate", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success() && err.contains("missing"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn choosing_the_autoregressive_prior_generates_and_the_recipe_records_it() {
    let dir = temp("ar");
    let out = dir.join("ar.png");
    let st = Command::new(env!("CARGO_BIN_EXE_unclip"))
        .args(["--device", "cpu", "generate", "a blue triangle", "--prior", "ar", "--temperature", "0.8"])
        .args(["--decoder-steps", "5", "--sr-steps", "0", "-o"])
        .arg(&out)
        .env_remove("UNCLIP_MODEL")
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let recipe = unclip::image_io::read_recipe(&std::fs::read(&out).unwrap()).expect("recipe chunk");
    match &recipe.operation {
        unclip::recipe::Operation::Generate(p) => {
            assert_eq!(p.prior_kind, unclip::pipeline::PriorKind::Autoregressive);
            assert_eq!(p.temperature, 0.8);
        }
        other => panic!("wrong operation {other:?}"),
    }
    assert!(recipe.parameters_text().contains("autoregressive"), "{}", recipe.parameters_text());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_fresh_clone_generates_with_the_shipped_model_and_no_model_flag() {
    let dir = temp("shipped");
    let out = dir.join("star.png");
    let st = Command::new(env!("CARGO_BIN_EXE_unclip"))
        .args(["--device", "cpu", "generate", "a small red star on a blue background", "--prior-steps", "10", "--decoder-steps", "10", "--sr-steps", "3", "-o"])
        .arg(&out)
        .env_remove("UNCLIP_MODEL")
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let bytes = std::fs::read(&out).expect("png written");
    let recipe = unclip::image_io::read_recipe(&bytes).expect("recipe chunk");
    assert_eq!(recipe.model, "default");
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    std::fs::remove_dir_all(dir).ok();
}
