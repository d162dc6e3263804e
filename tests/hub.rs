//! Models as users have them: a Hugging Face hub cache (refs → snapshots → symlinks into
//! blobs), opened by repo id, with the text→image repository borrowing the image encoder of
//! its image-variations sibling as Karlo's two repositories require.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cpu, fixtures_dir, tiny_model};
use unclip::pipeline::{DecodeParams, Engine, Picture, silent};

struct Cache(PathBuf);

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lays out `src`'s files (those `keep` accepts) as the snapshot `sha` of `repo` in a hub
/// cache at `cache`: every file a symlink into `blobs/`, `refs/main` naming the snapshot.
#[cfg(unix)]
fn cache_repo(cache: &Path, repo: &str, sha: &str, src: &Path, keep: &dyn Fn(&Path) -> bool) -> PathBuf {
    let root = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = root.join("snapshots").join(sha);
    std::fs::create_dir_all(root.join("refs")).unwrap();
    std::fs::create_dir_all(root.join("blobs")).unwrap();
    std::fs::write(root.join("refs/main"), sha).unwrap();
    let mut n = 0;
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(src).unwrap().to_path_buf();
            if p.is_dir() {
                stack.push(p);
            } else if keep(&rel) {
                n += 1;
                let blob = root.join("blobs").join(format!("blob{n:04}"));
                std::fs::copy(&p, &blob).unwrap();
                let link = snapshot.join(&rel);
                std::fs::create_dir_all(link.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(&blob, &link).unwrap();
            }
        }
    }
    snapshot
}

fn picture() -> Picture {
    let img = image::open(fixtures_dir().join("test_image.png")).expect("png").to_rgb8();
    Picture { width: img.width() as usize, height: img.height() as usize, rgb: img.into_raw() }
}

#[cfg(unix)]
#[test]
fn karlo_as_cached_opens_by_repo_id_and_borrows_the_image_encoder_from_its_variations_repo() {
    let cache = Cache(std::env::temp_dir().join(format!("unclip-hub-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&cache.0);
    let image_side = |p: &Path| p.starts_with("image_encoder") || p.starts_with("feature_extractor");
    // The text→image repo ships no image encoder; the variations repo has no prior.
    let t2i = cache_repo(&cache.0, "kakaobrain/karlo-v1-alpha", "0123abcd", &tiny_model(), &|p| !image_side(p));
    cache_repo(&cache.0, "kakaobrain/karlo-v1-alpha-image-variations", "4567ef01", &tiny_model(), &|p| {
        !p.starts_with("prior")
    });

    // Variations on the text→image snapshot: the borrowed encoder gives the same picture as
    // the complete fixture folder.
    let mut e = Engine::open(&t2i, cpu()).expect("open the snapshot");
    assert!(e.folder.image_side.is_some(), "the variations repo was not found beside it");
    assert_eq!(e.folder.why_no_image_operations(), None);
    assert_eq!(e.folder.why_no_text_to_image(), None);
    let p = DecodeParams { num_images: 1, seed: 0, decoder: common::recorded_call("").decoder, super_res_steps: 3 };
    let got = silent(|ctl| e.variations(&picture(), &p, ctl)).expect("variations");
    let mut whole = Engine::open(&tiny_model(), cpu()).unwrap();
    let want = silent(|ctl| whole.variations(&picture(), &p, ctl)).unwrap();
    assert!(got.pictures[0].rgb == want.pictures[0].rgb, "borrowed encoder gives another picture");

    // The variations repo alone: image operations on, text→image off with the reason.
    let mut var = Engine::open(&cache.0.join("models--kakaobrain--karlo-v1-alpha-image-variations/snapshots/4567ef01"), cpu())
        .expect("open the variations snapshot");
    let why = var.folder.why_no_text_to_image().expect("no prior, so no text→image");
    assert!(why.contains("kakaobrain/karlo-v1-alpha"), "{why}");
    assert!(silent(|ctl| var.variations(&picture(), &p, ctl)).is_ok());

    // The CLI by repo id (found through HF_HUB_CACHE) gives the picture of the plain folder.
    let out = cache.0.join("by-id.png");
    let plain = cache.0.join("plain.png");
    let run = |model: &str, out: &Path| {
        let st = Command::new(env!("CARGO_BIN_EXE_unclip"))
            .args(["--device", "cpu", "--model", model, "generate", "a red circle", "--prior-steps", "3"])
            .args(["--decoder-steps", "3", "--sr-steps", "2", "-o"])
            .arg(out)
            .env("HF_HUB_CACHE", &cache.0)
            .output()
            .unwrap();
        assert!(st.status.success(), "{model}: {}", String::from_utf8_lossy(&st.stderr));
    };
    run("kakaobrain/karlo-v1-alpha", &out);
    run(tiny_model().to_str().unwrap(), &plain);
    let pixels = |p: &Path| image::open(p).unwrap().to_rgb8().into_raw();
    assert!(pixels(&out) == pixels(&plain), "the cached repo draws another picture");
    // …and at a revision that is not cached, one line saying so.
    let st = Command::new(env!("CARGO_BIN_EXE_unclip"))
        .args(["--device", "cpu", "--model", "kakaobrain/karlo-v1-alpha@v9", "generate", "x"])
        .env("HF_HUB_CACHE", &cache.0)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success() && err.contains("v9") && err.contains("main"), "{err}");
}
