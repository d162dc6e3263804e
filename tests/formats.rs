//! Weight files as they are published: PyTorch `.bin` pickles, shards with an index, and
//! `fp16` variants, each against diffusers (tests/reference/make_format_fixtures.py).

mod common;

use burn::tensor::DType;
use common::{Fixture, assert_close, cpu, fixtures_dir, reference_u8};
use unclip::pipeline::{Engine, silent};

fn params(prompt: &str) -> unclip::pipeline::GenerateParams {
    common::recorded_call(prompt)
}

fn prompt(fx: &Fixture) -> String {
    fx.json["text2img"]["prompt"].as_str().expect("prompt").to_string()
}

#[test]
fn a_folder_of_pytorch_bin_files_with_a_sharded_decoder_gives_the_diffusers_picture() {
    let fx = Fixture::open("pipelines");
    let mut bin = Engine::open(&fixtures_dir().join("tiny_unclip_bin"), cpu()).expect("open the .bin folder");
    let got = silent(|ctl| bin.text_to_image(&params(&prompt(&fx)), ctl)).expect("generate");
    assert_close("image embedding", &got.embeddings[0], &fx.values("text2img.text_proj.image_embeddings"), 1e-4);
    common::assert_pixels_agree_but_for_chaos("text→image from .bin", &got.pictures[0].rgb, &reference_u8(&fx, "text2img.image"));
    // The same weights as the safetensors folder: the same bytes.
    let mut st = Engine::open(&fixtures_dir().join("tiny_unclip"), cpu()).expect("open");
    let want = silent(|ctl| st.text_to_image(&params(&prompt(&fx)), ctl)).expect("generate");
    assert!(got.pictures[0].rgb == want.pictures[0].rgb, ".bin and .safetensors weights differ");
}

#[test]
fn an_fp16_variant_folder_loads_with_variant_fp16_and_gives_the_diffusers_picture() {
    let fx = Fixture::open("pipelines");
    let formats = Fixture::open("formats");
    let mut e = Engine::open(&fixtures_dir().join("tiny_unclip_fp16"), cpu()).expect("open the fp16 folder");
    e.folder.variant = Some("fp16".into());
    e.dtype = DType::F32;
    let got = silent(|ctl| e.text_to_image(&params(&prompt(&fx)), ctl)).expect("generate");
    common::assert_pixels_agree_but_for_chaos("fp16 variant text→image", &got.pictures[0].rgb, &reference_u8(&formats, "fp16.text2img.image"));
    let img = image::open(fixtures_dir().join("test_image.png")).expect("png").to_rgb8();
    let pic = unclip::pipeline::Picture { width: img.width() as usize, height: img.height() as usize, rgb: img.into_raw() };
    let p = unclip::pipeline::DecodeParams { num_images: 1, seed: 0, decoder: params("").decoder, super_res_steps: 3 };
    let var = silent(|ctl| e.variations(&pic, &p, ctl)).expect("variations");
    common::assert_pixels_agree_but_for_chaos("fp16 variant variation", &var.pictures[0].rgb, &reference_u8(&formats, "fp16.variation_image.image"));
}

#[test]
fn asking_for_a_variant_a_folder_lacks_names_the_file_looked_for() {
    let mut e = Engine::open(&fixtures_dir().join("tiny_unclip"), cpu()).expect("open");
    e.folder.variant = Some("fp16".into());
    let err = silent(|ctl| e.text_to_image(&params("a red circle"), ctl)).expect_err("no fp16 files there");
    let msg = err.to_string();
    assert!(msg.contains("model.fp16.safetensors") || msg.contains("diffusion_pytorch_model.fp16.safetensors"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn a_missing_text_encoder_names_model_safetensors_not_the_diffusers_name() {
    let dir = std::env::temp_dir().join(format!("unclip-formats-missing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let err = unclip::model::weights::weight_files(&dir, None).expect_err("no weights");
    // A diffusers component is looked for under the diffusers name...
    assert!(err.to_string().contains("diffusion_pytorch_model.safetensors"), "{err}");
    let te = dir.join("text_encoder");
    std::fs::create_dir_all(&te).unwrap();
    let err = unclip::model::weights::weight_files(&te, None).expect_err("no weights");
    // ...and the transformers name for a text encoder.
    assert!(err.to_string().contains("text_encoder/model.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_shard_index_that_names_a_file_outside_the_folder_is_refused() {
    let dir = std::env::temp_dir().join(format!("unclip-formats-index-{}", std::process::id())).join("decoder");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("diffusion_pytorch_model.safetensors.index.json"), r#"{"weight_map": {"a": "../../etc/passwd"}}"#).unwrap();
    let err = unclip::model::weights::weight_files(&dir, None).expect_err("refused");
    assert!(err.to_string().contains("not a file name in this folder"), "{err}");
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}
