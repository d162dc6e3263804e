//! Every network equals diffusers/transformers on the recorded fixtures of both sizes
//! (tests/reference/make_fixtures.py: tiny and mid-size random-weight components), down to
//! the sub-blocks; loading errors name what is wrong.

mod common;

use burn::prelude::*;
use burn::tensor::DType;
use common::{Fixture, SIZES, assert_close, cpu, fixtures_dir};
use unclip::model::folder::ModelFolder;
use unclip::model::nn::to_vec;
use unclip::model::unet::UNet;
use unclip::model::unet::attention::Context;
use unclip::model::unet::resnet::ResnetBlock2D;
use unclip::pipeline::Picture;
use unclip::pipeline::images::{clip_pixel_values, resize_batch};

fn folder(name: &str) -> ModelFolder {
    ModelFolder::open(&fixtures_dir().join(name)).expect("fixture model folder")
}

const TOL: f32 = 1e-4;

#[test]
fn tokenizer_matches_transformers_clip_tokenizer_on_90_strings() {
    let text = std::fs::read_to_string(fixtures_dir().join("tokenizer_cases.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (size, dir) in [("tiny", "tiny_unclip"), ("mid", "mid_unclip")] {
        let tok = folder(dir).tokenizer().expect("tokenizer");
        let cases = all[size].as_array().expect("cases");
        assert!(cases.len() >= 50, "{size}: {} strings", cases.len());
        for case in cases {
            let prompt = case["prompt"].as_str().unwrap();
            let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let mask: Vec<bool> = case["attention_mask"].as_array().unwrap().iter().map(|v| v.as_u64() == Some(1)).collect();
            let got = tok.encode(prompt).expect("encode");
            assert_eq!(got.ids, ids, "{size}: ids of {prompt:?}");
            assert_eq!(got.mask, mask, "{size}: mask of {prompt:?}");
            let untruncated = case["untruncated_length"].as_u64().unwrap() as usize;
            assert_eq!(got.truncated, untruncated > tok.max_length, "{size}: truncation flag of {prompt:?}");
        }
        println!("{size}: {} strings equal to transformers' CLIPTokenizer", cases.len());
    }
}

#[test]
fn text_encoder_matches_transformers() {
    let device = cpu();
    for (dir, comp, _) in SIZES {
        let fx = Fixture::open(comp);
        let te = folder(dir).text_encoder(&device, DType::F32).expect("load");
        let out = te.forward(&fx.id_rows("text_encoder.input_ids"), &device).expect("forward");
        assert_close(&format!("{dir} text_embeds"), &to_vec(out.text_embeds), &fx.values("text_encoder.text_embeds"), TOL);
        assert_close(
            &format!("{dir} last_hidden_state"),
            &to_vec(out.last_hidden_state),
            &fx.values("text_encoder.last_hidden_state"),
            TOL,
        );
    }
}

#[test]
fn image_encoder_and_preprocessing_match_transformers() {
    let device = cpu();
    let img = image::open(fixtures_dir().join("test_image.png")).expect("png").to_rgb8();
    let pic = Picture { width: img.width() as usize, height: img.height() as usize, rgb: img.into_raw() };
    for (dir, comp, _) in SIZES {
        let fx = Fixture::open(comp);
        let ie = folder(dir).image_encoder(&device, DType::F32).expect("load");
        let out = ie.forward(fx.tensor("image_encoder.pixel_values", &device)).expect("forward");
        assert_close(&format!("{dir} image_embeds"), &to_vec(out), &fx.values("image_encoder.image_embeds"), TOL);
        let cfg = folder(dir).image_processor().expect("preprocessor config");
        let pixels = clip_pixel_values(&pic, &cfg, &device).expect("preprocess");
        assert_close(&format!("{dir} pixel_values"), &to_vec(pixels.clone()), &fx.values("feature_extractor.pixel_values"), 1e-5);
        let z = ie.forward(pixels).expect("forward");
        assert_close(&format!("{dir} embeds of test_image.png"), &to_vec(z), &fx.values("feature_extractor.image_embeds"), TOL);
    }
}

#[test]
fn prior_matches_diffusers() {
    let device = cpu();
    for (dir, comp, _) in SIZES {
        let fx = Fixture::open(comp);
        let prior = folder(dir).prior(&device, DType::F32).expect("load");
        let t = fx.json["prior"]["timestep"].as_f64().unwrap() as f32;
        let out = prior.forward(
            fx.tensor("prior.hidden_states", &device),
            t,
            fx.tensor("prior.proj_embedding", &device),
            fx.tensor("prior.encoder_hidden_states", &device),
            &fx.bool_rows("prior.attention_mask"),
        );
        assert_close(&format!("{dir} prior"), &to_vec(out), &fx.values("prior.predicted_image_embedding"), TOL);
        let post = prior.post_process_latents(fx.tensor("prior.post_process_in", &device));
        assert_close(&format!("{dir} post_process_latents"), &to_vec(post), &fx.values("prior.post_process_out"), 1e-6);
    }
}

#[test]
fn text_proj_matches_diffusers() {
    let device = cpu();
    for (dir, comp, _) in SIZES {
        let fx = Fixture::open(comp);
        let tp = folder(dir).text_proj(&device, DType::F32).expect("load");
        let out = tp.forward(
            fx.tensor("text_proj.image_embeddings", &device),
            fx.tensor("text_proj.prompt_embeds", &device),
            fx.tensor("text_proj.text_encoder_hidden_states", &device),
            true,
        );
        let states = fx.values("text_proj.encoder_hidden_states");
        assert_close(&format!("{dir} context tokens"), &to_vec(out.encoder_hidden_states), &states, TOL);
        assert_close(
            &format!("{dir} additive_clip_time_embeddings"),
            &to_vec(out.additive_clip_time_embeddings),
            &fx.values("text_proj.additive_clip_time_embeddings"),
            TOL,
        );
    }
}

#[test]
fn f16_weights_load_into_an_f32_model() {
    let fx = Fixture::open("components");
    let device = cpu();
    let dir = fixtures_dir().join("text_proj_fp16");
    let cfg = unclip::model::config::read_config(&dir.join("config.json")).expect("config");
    let file = unclip::model::weights::weight_files(&dir, None).expect("weights");
    let tp = unclip::model::weights::load_into(
        unclip::model::text_proj::UnCLIPTextProjModel::init(&cfg, &device),
        &file,
        DType::F32,
    )
    .expect("load f16 file");
    assert_eq!(tp.embedding_proj.weight.val().dtype(), DType::F32);
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
    let device = cpu();
    for (dir, comp, _) in SIZES {
        let fx = Fixture::open(comp);
        let unet = folder(dir).decoder(&device, DType::F32).expect("load");
        let t = fx.json["decoder"]["timestep"].as_f64().unwrap() as f32;
        let mask = fx.bool_rows("decoder.attention_mask");
        let out = unet.forward_decoder(
            fx.tensor("decoder.sample", &device),
            t,
            fx.tensor("decoder.encoder_hidden_states", &device),
            fx.tensor("decoder.class_labels", &device),
            &mask,
        );
        assert_close(&format!("{dir} decoder"), &to_vec(out), &fx.values("decoder.out"), TOL);
        // The mask matters: without it the output differs.
        let ctx = Context::new(fx.tensor("decoder.encoder_hidden_states", &device), None);
        let unmasked = unet.forward(fx.tensor("decoder.sample", &device), t, Some(fx.tensor("decoder.class_labels", &device)), Some(&ctx));
        let err = common::max_abs_diff(&to_vec(unmasked), &fx.values("decoder.out"));
        assert!(err > 1e-3, "{dir}: masking changed nothing ({err})");
    }
}

#[test]
fn super_res_unets_match_diffusers() {
    let device = cpu();
    for (dir, comp, _) in SIZES {
        let fx = Fixture::open(comp);
        for name in ["super_res_first", "super_res_last"] {
            let unet = folder(dir).super_res(name, &device, DType::F32).expect("load");
            let t = fx.json[name]["timestep"].as_f64().unwrap() as f32;
            let out = unet.forward(fx.tensor(&format!("{name}.sample"), &device), t, None, None);
            assert_close(&format!("{dir} {name}"), &to_vec(out), &fx.values(&format!("{name}.out")), TOL);
        }
    }
    // The tiny pair covers both mid blocks: without and with self-attention.
    let first = folder("tiny_unclip").super_res("super_res_first", &device, DType::F32).unwrap();
    let last = folder("tiny_unclip").super_res("super_res_last", &device, DType::F32).unwrap();
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

/// A UNet resnet by its diffusers module path.
fn resnet<'a>(u: &'a UNet, path: &str) -> &'a ResnetBlock2D {
    let p: Vec<&str> = path.split('.').collect();
    let idx = |s: &str| s.parse::<usize>().unwrap();
    match p.as_slice() {
        ["down_blocks", i, "resnets", j] => &u.down_blocks[idx(i)].resnets[idx(j)],
        ["down_blocks", i, "downsamplers", j] => &u.down_blocks[idx(i)].downsamplers[idx(j)],
        ["up_blocks", i, "resnets", j] => &u.up_blocks[idx(i)].resnets[idx(j)],
        ["up_blocks", i, "upsamplers", j] => &u.up_blocks[idx(i)].upsamplers[idx(j)],
        ["mid_block", "resnets", j] => &u.mid_block.as_ref().unwrap().resnets[idx(j)],
        _ => panic!("no resnet at {path}"),
    }
}

fn attention<'a>(u: &'a UNet, path: &str) -> &'a unclip::model::unet::attention::SpatialAttention {
    let p: Vec<&str> = path.split('.').collect();
    let idx = |s: &str| s.parse::<usize>().unwrap();
    match p.as_slice() {
        ["down_blocks", i, "attentions", j] => &u.down_blocks[idx(i)].attentions[idx(j)],
        ["up_blocks", i, "attentions", j] => &u.up_blocks[idx(i)].attentions[idx(j)],
        ["mid_block", "attentions", j] => &u.mid_block.as_ref().unwrap().attentions[idx(j)],
        _ => panic!("no attention at {path}"),
    }
}

/// Every recorded sub-module call of one UNet, replayed on ours.
fn check_unet_blocks(fx: &Fixture, comp: &str, unet: &UNet, device: &Device) -> usize {
    let mods = fx.json["forwards"][comp]["modules"].as_object().expect("modules");
    let mut checked = 0;
    // Arguments a block received but the fixture only describes are the same tensors its
    // first resnet / attention received.
    let any_key = |suffix: &str| mods.keys().map(|k| format!("{k}.{suffix}")).find(|k| fx.has(k));
    let temb = any_key("temb").map(|k| fx.tensor::<2>(&k, device));
    let ctx = mods
        .keys()
        .find(|k| fx.has(&format!("{k}.encoder_hidden_states")))
        .map(|k| {
            Context::new(
                fx.tensor(&format!("{k}.encoder_hidden_states"), device),
                fx.has(&format!("{k}.attention_mask")).then(|| {
                    let m: Tensor<3> = fx.tensor(&format!("{k}.attention_mask"), device);
                    let [b, _, n] = m.dims();
                    m.reshape([b, n])
                }),
            )
        });
    for (key, info) in mods {
        let path = key.strip_prefix(&format!("{comp}.")).unwrap();
        let class = info["class"].as_str().unwrap();
        let out_key = format!("{key}.out");
        let got: Vec<f32> = match class {
            "ResnetBlock2D" => {
                let t = fx.tensor::<2>(&format!("{key}.temb"), device);
                to_vec(resnet(unet, path).forward(fx.tensor(&format!("{key}.in"), device), t))
            }
            "Attention" => {
                let c = fx.has(&format!("{key}.encoder_hidden_states")).then(|| {
                    let m: Tensor<3> = fx.tensor(&format!("{key}.attention_mask"), device);
                    let [b, _, n] = m.dims();
                    Context::new(fx.tensor(&format!("{key}.encoder_hidden_states"), device), Some(m.reshape([b, n])))
                });
                to_vec(attention(unet, path).forward(fx.tensor(&format!("{key}.in"), device), c.as_ref()))
            }
            "TimestepEmbedding" => to_vec(unet.time_embedding.forward(fx.tensor(&format!("{key}.in"), device))),
            "Conv2d" => continue,
            c if c.contains("Down") => {
                let i: usize = path.rsplit('.').next().unwrap().parse().unwrap();
                let (out, res) = unet.down_blocks[i].forward(fx.tensor(&format!("{key}.in"), device), temb.as_ref().unwrap(), ctx.as_ref());
                for (k, r) in res.into_iter().enumerate() {
                    assert_close(&format!("{key}.res.{k}"), &to_vec(r), &fx.values(&format!("{key}.res.{k}")), TOL);
                }
                to_vec(out)
            }
            c if c.contains("Mid") => {
                to_vec(unet.mid_block.as_ref().unwrap().forward(fx.tensor(&format!("{key}.in"), device), temb.as_ref().unwrap(), ctx.as_ref()))
            }
            c if c.contains("Up") => {
                let i: usize = path.rsplit('.').next().unwrap().parse().unwrap();
                let n = info["args"][1]["stored_as"].as_array().map(|a| a.len()).unwrap_or(0);
                let mut skips: Vec<Tensor<4>> = (0..n).map(|k| fx.tensor(&format!("{key}.res_in.{k}"), device)).collect();
                to_vec(unet.up_blocks[i].forward(fx.tensor(&format!("{key}.in"), device), &mut skips, temb.as_ref().unwrap(), ctx.as_ref()))
            }
            other => panic!("unexpected module class {other} at {key}"),
        };
        assert_close(key, &got, &fx.values(&out_key), TOL);
        checked += 1;
    }
    checked
}

#[test]
fn every_unet_block_resnet_and_attention_matches_diffusers() {
    let device = cpu();
    let fx = Fixture::open("blocks");
    let f = folder("tiny_unclip");
    let n = check_unet_blocks(&fx, "decoder", &f.decoder(&device, DType::F32).unwrap(), &device)
        + check_unet_blocks(&fx, "super_res_last", &f.super_res("super_res_last", &device, DType::F32).unwrap(), &device);
    let mid = Fixture::open("blocks_mid");
    let m = check_unet_blocks(&mid, "decoder", &folder("mid_unclip").decoder(&device, DType::F32).unwrap(), &device);
    println!("{n} tiny and {m} mid sub-module calls checked");
    assert!(n >= 30 && m >= 4);
}

#[test]
fn prior_blocks_and_text_encoder_layers_match() {
    let device = cpu();
    for (name, dir) in [("blocks", "tiny_unclip"), ("blocks_mid", "mid_unclip")] {
        let fx = Fixture::open(name);
        let prior = folder(dir).prior(&device, DType::F32).unwrap();
        let heads = prior.config.num_attention_heads;
        for (i, block) in prior.transformer_blocks.iter().enumerate() {
            let key = format!("prior.transformer_blocks.{i}");
            // diffusers repeats the mask per head, [b·heads, n, n]; every head's copy is equal.
            let m: Tensor<3> = fx.tensor(&format!("{key}.attention_mask"), &device);
            let [bh, n, _] = m.dims();
            let bias = m.reshape([bh / heads, heads, n, n]).narrow(1, 0, 1);
            let out = block.forward(fx.tensor(&format!("{key}.in"), &device), Some(bias));
            assert_close(&format!("{dir} {key}"), &to_vec(out), &fx.values(&format!("{key}.out")), TOL);
        }
        let te = folder(dir).text_encoder(&device, DType::F32).unwrap();
        for (i, layer) in te.text_model.encoder.layers.iter().enumerate() {
            let key = format!("text_encoder.layers.{i}");
            let causal = fx.tensor::<4>(&format!("{key}.causal_attention_mask"), &device);
            let out = layer.forward(fx.tensor(&format!("{key}.in"), &device), Some(causal));
            assert_close(&format!("{dir} {key}"), &to_vec(out), &fx.values(&format!("{key}.out")), TOL);
        }
    }
}

/// A private copy of one fixture component, to damage.
fn damaged_copy(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("unclip-damaged-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "diffusion_pytorch_model.safetensors"] {
        std::fs::copy(fixtures_dir().join("tiny_unclip/text_proj").join(f), dir.join(f)).unwrap();
    }
    dir
}

fn load_text_proj(dir: &std::path::Path) -> String {
    let device = cpu();
    let result = unclip::model::config::read_config(&dir.join("config.json")).and_then(|cfg| {
        let file = unclip::model::weights::weight_files(dir, None)?;
        unclip::model::weights::load_into(unclip::model::text_proj::UnCLIPTextProjModel::init(&cfg, &device), &file, DType::F32)
    });
    let msg = result.err().expect("loading must fail").to_string();
    println!("{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

/// Rewrites the weights file through `edit` (name → (shape, values)).
fn rewrite(dir: &std::path::Path, edit: impl FnOnce(&mut std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>)) {
    let path = dir.join("diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut map = std::collections::BTreeMap::new();
    for (k, v) in st.tensors() {
        let vals: Vec<f32> = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        map.insert(k, (v.shape().to_vec(), vals));
    }
    edit(&mut map);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> =
        map.into_iter().map(|(k, (s, v))| (k, s, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(k, s, b)| (k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn a_truncated_weights_file_is_named_in_the_error() {
    let dir = damaged_copy("trunc");
    let w = dir.join("diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let msg = load_text_proj(&dir);
    assert!(msg.contains("diffusion_pytorch_model.safetensors") && msg.contains("truncated"), "{msg}");
}

#[test]
fn a_mis_shaped_tensor_names_key_shapes_and_file() {
    let dir = damaged_copy("shape");
    rewrite(&dir, |m| {
        let (shape, vals) = m.get_mut("embedding_proj.weight").unwrap();
        let cols = shape[1];
        shape[0] -= 1;
        vals.truncate(shape[0] * cols);
    });
    let msg = load_text_proj(&dir);
    assert!(msg.contains("'embedding_proj.weight'"), "{msg}");
    assert!(msg.contains("[63, 32]") && msg.contains("[64, 32]"), "checkpoint layout shapes: {msg}");
    assert!(msg.contains("diffusion_pytorch_model.safetensors"), "{msg}");
}

#[test]
fn a_missing_or_extra_tensor_is_named() {
    let dir = damaged_copy("missing");
    rewrite(&dir, |m| {
        m.remove("text_encoder_hidden_states_norm.weight");
    });
    let msg = load_text_proj(&dir);
    assert!(msg.contains("missing tensor 'text_encoder_hidden_states_norm.weight'"), "{msg}");

    let dir = damaged_copy("extra");
    rewrite(&dir, |m| {
        m.insert("surprise.weight".into(), (vec![2], vec![1.0, 2.0]));
    });
    let msg = load_text_proj(&dir);
    assert!(msg.contains("unexpected tensor 'surprise.weight'"), "{msg}");
}

#[test]
fn a_malformed_config_is_a_one_line_error() {
    let dir = damaged_copy("config");
    std::fs::write(dir.join("config.json"), "{\"clip_embeddings_dim\": \"wide\",").unwrap();
    let msg = load_text_proj(&dir);
    assert!(msg.contains("config.json") && msg.contains("invalid config"), "{msg}");
    std::fs::write(dir.join("config.json"), "{\"clip_embeddings_dim\": \"wide\"}").unwrap();
    let msg = load_text_proj(&dir);
    assert!(msg.contains("clip_embeddings_dim") || msg.contains("invalid type"), "{msg}");
}
