//! The shipped model's autoregressive prior (the paper's second prior): its embeddings carry
//! the caption, and its sampling is repeatable.

use unclip::model::ar_codebook::DotHalf;
use unclip::model::nn::to_vec;
use unclip::pipeline::latent::cosine;
use unclip::pipeline::noise::Noise;
use unclip::pipeline::stages::rows;
use unclip::pipeline::{Engine, silent};
use unclip::train::world::{Shape, with_article};

fn shipped() -> Engine {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/model");
    Engine::open(&dir, burn::tensor::Device::flex()).expect("the shipped model opens")
}

/// Zero-shot shape of an embedding: the shape whose "a <colour> <shape>" caption embedding
/// is nearest.
fn shape_of(e: &mut Engine, z: &[f32], colour: &str) -> Shape {
    let mut best = (f64::MIN, Shape::ALL[0]);
    for s in Shape::ALL {
        let t = silent(|ctl| e.encode_prompt(&with_article(&format!("{colour} {}", s.name())), ctl)).unwrap();
        let c = cosine(z, &to_vec(t.embeds));
        if c > best.0 {
            best = (c, s);
        }
    }
    best.1
}

#[test]
fn the_shipped_autoregressive_prior_draws_the_captioned_shape_far_more_often_than_random_embeddings() {
    let mut e = shipped();
    assert!(e.folder.has_ar_prior());
    let per = 4;
    let (mut ar_right, mut random_right, mut total) = (0, 0, 0);
    for (k, colour) in ["red", "blue"].iter().enumerate() {
        for (j, shape) in Shape::ALL.iter().enumerate() {
            let caption = with_article(&format!("{colour} {}", shape.name()));
            let seed = (10 * k + j) as u64;
            let z = silent(|ctl| {
                let cond = e.text_batch(&caption, per, ctl)?;
                let uncond = e.text_batch("", per, ctl)?;
                e.run_ar_prior_at(&cond, Some(&uncond), 4.0, 1.0, DotHalf::High, &mut Noise::seeded(seed), ctl)
            })
            .unwrap();
            e.load_ar_prior().unwrap();
            let book = e.parts().ar_prior.as_ref().unwrap().codebook();
            let mut noise = Noise::seeded(1000 + seed);
            for z in rows(z) {
                ar_right += (shape_of(&mut e, &z, colour) == *shape) as usize;
                let u = noise.uniform(book.components_kept()).unwrap();
                random_right += (shape_of(&mut e, &book.random_embedding(&u), colour) == *shape) as usize;
                total += 1;
            }
        }
    }
    let (ar, random) = (ar_right as f64 / total as f64, random_right as f64 / total as f64);
    println!("zero-shot shape of sampled embeddings: autoregressive {ar:.2}, random {random:.2} ({total} each)");
    // Chance is 1 in 5.
    assert!(ar >= 0.6 && ar >= random + 0.3, "autoregressive {ar:.2} vs random {random:.2}");
}

#[test]
fn the_same_seed_draws_the_same_autoregressive_embedding() {
    let mut e = shipped();
    let draw = |e: &mut Engine, seed| {
        to_vec(
            silent(|ctl| {
                let cond = e.text_batch("a green star", 2, ctl)?;
                e.run_ar_prior(&cond, None, 1.0, 1.0, &mut Noise::seeded(seed), ctl)
            })
            .unwrap(),
        )
    };
    let (a, b, c) = (draw(&mut e, 5), draw(&mut e, 5), draw(&mut e, 6));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|v| v.is_finite()));
}
