//! Every network equals diffusers/transformers on the recorded fixtures
//! (tests/reference/make_fixtures.py, tiny random-weight components).

mod common;

use burn::prelude::*;
use burn::tensor::DType;
use common::{Fixture, assert_close, cpu, fixtures_dir, tiny_model};
use unclip::model::folder::ModelFolder;
use unclip::model::nn::to_vec;
use unclip::model::unet::attention::Context;
use unclip::model::unet::decoder::mask_bias;
use unclip::pipeline::Picture;
use unclip::pipeline::images::{clip_pixel_values, resize_batch};

fn folder() -> ModelFolder {
    ModelFolder::open(&tiny_model()).expect("tiny model folder")
}

#[test]
fn tokenizer_matches_transformers_clip_tokenizer() {
    let fx = Fixture::open("components");
    let tok = folder().tokenizer().expect("tokenizer");
    let cases = fx.json["tokenizer"]["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let mask: Vec<bool> = case["attention_mask"].as_array().unwrap().iter().map(|v| v.as_u64() == Some(1)).collect();
        let got = tok.encode(prompt).expect("encode");
        assert_eq!(got.ids, ids, "ids of {prompt:?}");
        assert_eq!(got.mask, mask, "mask of {prompt:?}");
        let untruncated = case["untruncated_length"].as_u64().unwrap_or(0) as usize;
        assert_eq!(got.truncated, untruncated > 77, "truncation flag of {prompt:?}");
    }
}

#[test]
fn text_encoder_matches_transformers() {
    let fx = Fixture::open("components");
    let device = cpu();
    let te = folder().text_encoder(&device, DType::F32).expect("load");
    let ids = fx.id_rows("text_encoder.input_ids");
    let out = te.forward(&ids, &device).expect("forward");
    assert_close("text_embeds", &to_vec(out.text_embeds), &fx.values("text_encoder.text_embeds"), 1e-5);
    assert_close(
        "last_hidden_state",
        &to_vec(out.last_hidden_state),
        &fx.values("text_encoder.last_hidden_state"),
        1e-5,
    );
}

#[test]
fn image_encoder_matches_transformers() {
    let fx = Fixture::open("components");
    let device = cpu();
    let ie = folder().image_encoder(&device, DType::F32).expect("load");
    let out = ie.forward(fx.tensor("image_encoder.pixel_values", &device)).expect("forward");
    assert_close("image_embeds", &to_vec(out), &fx.values("image_encoder.image_embeds"), 1e-5);
}

#[test]
fn clip_image_processor_matches_transformers() {
    let fx = Fixture::open("components");
    let device = cpu();
    let img = image::open(fixtures_dir().join("test_image.png")).expect("png").to_rgb8();
    let pic = Picture { width: img.width() as usize, height: img.height() as usize, rgb: img.into_raw() };
    let cfg = folder().image_processor().expect("preprocessor config");
    let pixels = clip_pixel_values(&pic, &cfg, &device).expect("preprocess");
    assert_close("pixel_values", &to_vec(pixels.clone()), &fx.values("feature_extractor.pixel_values"), 1e-5);
    let ie = folder().image_encoder(&device, DType::F32).expect("load");
    let z = ie.forward(pixels).expect("forward");
    assert_close("image_embeds of test_image.png", &to_vec(z), &fx.values("feature_extractor.image_embeds"), 1e-5);
}

#[test]
fn prior_matches_diffusers() {
    let fx = Fixture::open("components");
    let device = cpu();
    let prior = folder().prior(&device, DType::F32).expect("load");
    let t = fx.json["prior"]["timestep"].as_f64().unwrap() as f32;
    let out = prior.forward(
        fx.tensor("prior.hidden_states", &device),
        t,
        fx.tensor("prior.proj_embedding", &device),
        fx.tensor("prior.encoder_hidden_states", &device),
        &fx.bool_rows("prior.attention_mask"),
    );
    assert_close("predicted_image_embedding", &to_vec(out), &fx.values("prior.predicted_image_embedding"), 1e-5);
    let post = prior.post_process_latents(fx.tensor("prior.post_process_in", &device));
    assert_close("post_process_latents", &to_vec(post), &fx.values("prior.post_process_out"), 1e-6);
}

#[test]
fn text_proj_matches_diffusers() {
    let fx = Fixture::open("components");
    let device = cpu();
    let tp = folder().text_proj(&device, DType::F32).expect("load");
    let out = tp.forward(
        fx.tensor("text_proj.image_embeddings", &device),
        fx.tensor("text_proj.prompt_embeds", &device),
        fx.tensor("text_proj.text_encoder_hidden_states", &device),
        true,
    );
    assert_close(
        "encoder_hidden_states",
        &to_vec(out.encoder_hidden_states),
        &fx.values("text_proj.encoder_hidden_states"),
        1e-5,
    );
    assert_close(
        "additive_clip_time_embeddings",
        &to_vec(out.additive_clip_time_embeddings),
        &fx.values("text_proj.additive_clip_time_embeddings"),
        1e-5,
    );
}

#[test]
fn f16_weights_load_into_an_f32_model() {
    let fx = Fixture::open("components");
    let device = cpu();
    let dir = fixtures_dir().join("text_proj_fp16");
    let cfg = unclip::model::config::read_config(&dir.join("config.json")).expect("config");
    let file = unclip::model::weights::weight_file(&dir).expect("weights");
    let tp = unclip::model::weights::load_into(
        unclip::model::text_proj::UnCLIPTextProjModel::init(&cfg, &device),
        &file,
        DType::F32,
    )
    .expect("load f16 file");
    let out = tp.forward(
        fx.tensor("text_proj.image_embeddings", &device),
        fx.tensor("text_proj.prompt_embeds", &device),
        fx.tensor("text_proj.text_encoder_hidden_states", &device),
        true,
    );
    // The weights were rounded to f16, so only f16-level agreement is expected.
    assert_close(
        "encoder_hidden_states (f16 weights)",
        &to_vec(out.encoder_hidden_states),
        &fx.values("text_proj.encoder_hidden_states"),
        2e-2,
    );
}

#[test]
fn decoder_unet_matches_diffusers() {
    let fx = Fixture::open("components");
    let device = cpu();
    let unet = folder().decoder(&device, DType::F32).expect("load");
    let t = fx.json["decoder"]["timestep"].as_f64().unwrap() as f32;
    let mask = fx.bool_rows("decoder.attention_mask");
    let out = unet.forward_decoder(
        fx.tensor("decoder.sample", &device),
        t,
        fx.tensor("decoder.encoder_hidden_states", &device),
        fx.tensor("decoder.class_labels", &device),
        &mask,
    );
    assert_close("decoder out", &to_vec(out), &fx.values("decoder.out"), 1e-4);
    // The mask matters: without it the output differs.
    let ctx = Context { states: fx.tensor("decoder.encoder_hidden_states", &device), mask_bias: None };
    let unmasked = unet.forward(
        fx.tensor("decoder.sample", &device),
        t,
        Some(fx.tensor("decoder.class_labels", &device)),
        Some(&ctx),
    );
    let err = common::max_abs_diff(&to_vec(unmasked), &fx.values("decoder.out"));
    assert!(err > 1e-3, "masking changed nothing ({err})");
    let _ = mask_bias(&mask, &device);
}

#[test]
fn super_res_unets_match_diffusers_with_and_without_mid_attention() {
    let fx = Fixture::open("components");
    let device = cpu();
    for name in ["super_res_first", "super_res_last"] {
        let unet = folder().super_res(name, &device, DType::F32).expect("load");
        let t = fx.json[name]["timestep"].as_f64().unwrap() as f32;
        let out = unet.forward(fx.tensor(&format!("{name}.sample"), &device), t, None, None);
        assert_close(name, &to_vec(out), &fx.values(&format!("{name}.out")), 1e-4);
    }
    let first = folder().super_res("super_res_first", &device, DType::F32).unwrap();
    let last = folder().super_res("super_res_last", &device, DType::F32).unwrap();
    assert!(first.mid_block.as_ref().unwrap().attentions.is_empty());
    assert_eq!(last.mid_block.as_ref().unwrap().attentions.len(), 1);
}

#[test]
fn antialiased_bicubic_matches_torch_interpolate() {
    let fx = Fixture::open("components");
    let device = cpu();
    for (case, size) in [("up64", 64), ("up48", 48), ("down24", 24)] {
        let x: Tensor<4> = fx.tensor(&format!("bicubic.{case}.in"), &device);
        let y = resize_batch(x, size, size).expect("resize");
        assert_close(&format!("bicubic {case}"), &to_vec(y), &fx.values(&format!("bicubic.{case}.out")), 1e-5);
    }
}
