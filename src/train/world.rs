//! The "shapes" world: a procedural, seeded source of captioned images for training a
//! small unCLIP model from scratch.
//!
//! Every image shows one object (a circle, square, triangle, star or cross) of one colour
//! on a flat background of another colour, small or large, in one of nine positions. Each
//! image comes with an English caption that always names the shape but leaves the other
//! attributes out at random, so the prior has to learn to *sample* what a caption leaves
//! open. A handful of (colour, shape) pairs is held out of training to measure
//! compositional generalisation.
//!
//! Everything is a pure function of `(seed, index, split)`: nothing is stored, data
//! loading is random access, and a run can be reproduced exactly. A [`Scene`] is a
//! resolution-free description, so [`render`] draws the same sample at 32, 64 or 128 px
//! and the low-resolution image is (up to rounding) a box-downsampled high-resolution one,
//! which is what the 32 px decoder and the super-resolution stages need.
//!
//! This file uses only `std`, so it also compiles on its own
//! (`rustc --edition 2024 --test world.rs`).

use std::fmt;

// ---------------------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough for drawing scene
/// parameters; kept here so the world does not depend on any crate's stream staying stable.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in `0..n`; returns 0 for `n == 0` rather than panicking.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Multiply-shift instead of `%`: no modulo bias worth speaking of for small n.
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A uniformly chosen element (`None` only for an empty slice).
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// Standard normal (Box–Muller); for noise in tests and augmentation.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]: keeps ln finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Hash several words into one seed: chained SplitMix64 finalisers, so neighbouring
/// seeds and indices give unrelated streams.
fn mix(words: &[u64]) -> u64 {
    words.iter().fold(0x5348_4150_4553_5744, |acc, &w| {
        SplitMix64::new(acc ^ w).next_u64()
    })
}

// ---------------------------------------------------------------------------------------
// Attributes
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
    Cross,
}

impl Shape {
    pub const ALL: [Shape; 5] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Star,
        Shape::Cross,
    ];

    /// The canonical caption word.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Cross => "cross",
        }
    }

    /// Area of the drawn shape at radius 1 (so the area at radius r is this × r²).
    pub fn unit_area(self) -> f64 {
        if self == Shape::Circle {
            return std::f64::consts::PI;
        }
        // Shoelace formula over the outline.
        let poly = outline(self);
        let twice: f64 = (0..poly.len())
            .map(|k| {
                let (a, b) = (poly[k], poly[(k + 1) % poly.len()]);
                a.0 * b.1 - b.0 * a.1
            })
            .sum();
        twice.abs() / 2.0
    }

    /// Every phrase a caption may use for this shape (the first is canonical).
    fn phrases(self) -> &'static [&'static str] {
        match self {
            Shape::Circle => &["circle", "disc"],
            Shape::Square => &["square"],
            Shape::Triangle => &["triangle"],
            Shape::Star => &["star"],
            Shape::Cross => &["cross", "plus sign"],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    Purple,
    Orange,
    White,
    Black,
}

impl Colour {
    pub const ALL: [Colour; 8] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
        Colour::Orange,
        Colour::White,
        Colour::Black,
    ];

    /// The exact sRGB value drawn. Chosen so that every pair is at least ~90 apart in RGB
    /// (orange–yellow is the closest), which keeps them apart under noise and under the
    /// colour drift of a generated image.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 40, 40],
            Colour::Green => [40, 170, 70],
            Colour::Blue => [40, 80, 220],
            Colour::Yellow => [245, 225, 45],
            Colour::Purple => [140, 60, 190],
            Colour::Orange => [245, 135, 25],
            Colour::White => [245, 245, 245],
            Colour::Black => [20, 20, 20],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Purple => "purple",
            Colour::Orange => "orange",
            Colour::White => "white",
            Colour::Black => "black",
        }
    }

    fn phrases(self) -> &'static [&'static str] {
        match self {
            Colour::Red => &["red"],
            Colour::Green => &["green"],
            Colour::Blue => &["blue"],
            Colour::Yellow => &["yellow"],
            Colour::Purple => &["purple", "violet"],
            Colour::Orange => &["orange"],
            Colour::White => &["white"],
            Colour::Black => &["black"],
        }
    }

    /// The palette colour nearest to `rgb` (Euclidean in sRGB).
    pub fn nearest(rgb: [f64; 3]) -> Colour {
        Self::nearest_among(rgb, &Self::ALL).unwrap_or(Colour::Black)
    }

    /// Like [`Colour::nearest`] but restricted to `candidates` (`None` if it is empty).
    pub fn nearest_among(rgb: [f64; 3], candidates: &[Colour]) -> Option<Colour> {
        let dist = |c: Colour| {
            let p = c.rgb();
            (0..3).map(|k| (rgb[k] - p[k] as f64).powi(2)).sum::<f64>()
        };
        candidates
            .iter()
            .copied()
            .min_by(|a, b| dist(*a).total_cmp(&dist(*b)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Size {
    Small,
    Large,
}

impl Size {
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];

    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }

    fn phrases(self) -> &'static [&'static str] {
        match self {
            Size::Small => &["small", "little", "tiny"],
            Size::Large => &["large", "big"],
        }
    }

    /// Nominal radius as a fraction of the image side. The ratio (~1.9×, ~3.4× in area)
    /// is far larger than the ±8 % scale jitter, so the two never overlap.
    pub fn radius(self) -> f64 {
        match self {
            Size::Small => 0.14,
            Size::Large => 0.26,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Position {
    Centre,
    Left,
    Right,
    Top,
    Bottom,
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

impl Position {
    pub const ALL: [Position; 9] = [
        Position::Centre,
        Position::Left,
        Position::Right,
        Position::Top,
        Position::Bottom,
        Position::TopLeft,
        Position::TopRight,
        Position::BottomLeft,
        Position::BottomRight,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Position::Centre => "centre",
            Position::Left => "left",
            Position::Right => "right",
            Position::Top => "top",
            Position::Bottom => "bottom",
            Position::TopLeft => "top left",
            Position::TopRight => "top right",
            Position::BottomLeft => "bottom left",
            Position::BottomRight => "bottom right",
        }
    }

    pub fn phrases(self) -> &'static [&'static str] {
        match self {
            Position::Centre => &["in the centre", "in the center", "in the middle"],
            Position::Left => &["on the left", "on the left side"],
            Position::Right => &["on the right", "on the right side"],
            Position::Top => &["at the top", "near the top"],
            Position::Bottom => &["at the bottom", "near the bottom"],
            Position::TopLeft => &[
                "in the top left corner",
                "at the top left",
                "in the upper left corner",
            ],
            Position::TopRight => &[
                "in the top right corner",
                "at the top right",
                "in the upper right corner",
            ],
            Position::BottomLeft => &[
                "in the bottom left corner",
                "at the bottom left",
                "in the lower left corner",
            ],
            Position::BottomRight => &[
                "in the bottom right corner",
                "at the bottom right",
                "in the lower right corner",
            ],
        }
    }

    /// Column and row in a 3×3 grid (0 = left/top, 1 = middle, 2 = right/bottom).
    pub fn cell(self) -> (usize, usize) {
        match self {
            Position::Centre => (1, 1),
            Position::Left => (0, 1),
            Position::Right => (2, 1),
            Position::Top => (1, 0),
            Position::Bottom => (1, 2),
            Position::TopLeft => (0, 0),
            Position::TopRight => (2, 0),
            Position::BottomLeft => (0, 2),
            Position::BottomRight => (2, 2),
        }
    }

    /// Inverse of [`Position::cell`]; `None` outside the 3×3 grid.
    pub fn from_cell(col: usize, row: usize) -> Option<Position> {
        Position::ALL
            .iter()
            .copied()
            .find(|p| p.cell() == (col, row))
    }

    /// Where the object's centre is aimed, in image units (x right, y down): a quarter of
    /// the side from the middle for the outer cells, well inside the outer thirds the
    /// oracle reads positions from. (Large objects are pushed inwards to stay in frame,
    /// but their centres still stay at ≤ 0.30 / ≥ 0.70.)
    pub fn anchor(self) -> (f64, f64) {
        let (c, r) = self.cell();
        (0.25 + 0.25 * c as f64, 0.25 + 0.25 * r as f64)
    }
}

/// Which part of the (colour, shape) space a sampler draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// Every pair except the held-out ones.
    Train,
    /// Only the held-out pairs.
    HeldOut,
    /// Every pair.
    All,
}

/// One (colour, shape) pair per shape, with five different colours, never shown in
/// training: each colour and each shape is still seen in training with other partners.
pub fn held_out_pairs() -> &'static [(Colour, Shape)] {
    &[
        (Colour::Blue, Shape::Circle),
        (Colour::Purple, Shape::Square),
        (Colour::Red, Shape::Triangle),
        (Colour::Green, Shape::Star),
        (Colour::Yellow, Shape::Cross),
    ]
}

pub fn is_held_out(colour: Colour, shape: Shape) -> bool {
    held_out_pairs().contains(&(colour, shape))
}

// ---------------------------------------------------------------------------------------
// Scenes and geometry
// ---------------------------------------------------------------------------------------

/// A resolution-free description of one image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scene {
    pub shape: Shape,
    pub colour: Colour,
    pub background: Colour,
    pub size: Size,
    pub position: Position,
    /// Offset of the centre from the position's anchor, in image units (±0.03 in
    /// samples; clamped to ±0.2 when drawn).
    pub offset: (f64, f64),
    /// Multiplier on the nominal radius (0.92..1.08 in samples; clamped to 0.5..1.5).
    pub scale: f64,
    /// Rotation in radians, clockwise on screen (±0.12 in samples, 0 for circles).
    /// Non-finite jitter values are treated as zero / one.
    pub rotation: f64,
}

/// Where and how large the object is drawn, in image units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    pub centre: (f64, f64),
    pub radius: f64,
    pub rotation: f64,
}

/// Keep this much of the image side between the object and the edge (after jitter,
/// large objects in outer cells are pushed inwards rather than cut off).
const EDGE_MARGIN: f64 = 0.005;

impl Scene {
    /// A scene with no jitter (handy for reference images and tests).
    pub fn new(
        shape: Shape,
        colour: Colour,
        background: Colour,
        size: Size,
        position: Position,
    ) -> Self {
        Self {
            shape,
            colour,
            background,
            size,
            position,
            offset: (0.0, 0.0),
            scale: 1.0,
            rotation: 0.0,
        }
    }

    /// The drawn centre, radius and rotation. The centre is the anchor plus the jitter,
    /// then clamped so the whole (rotated) shape stays inside the frame: a clipped shape
    /// would be harder to recognise and would bias its apparent size and position.
    pub fn placement(&self) -> Placement {
        let radius = self.size.radius() * finite_or(self.scale, 1.0).clamp(0.5, 1.5);
        let rotation = finite_or(self.rotation, 0.0);
        let (ax, ay) = self.position.anchor();
        let cx = ax + finite_or(self.offset.0, 0.0).clamp(-0.2, 0.2);
        let cy = ay + finite_or(self.offset.1, 0.0).clamp(-0.2, 0.2);
        let (x0, x1, y0, y1) = local_extent(self.shape, rotation);
        let clamp = |c: f64, lo: f64, hi: f64| {
            let min = EDGE_MARGIN - lo * radius;
            let max = 1.0 - EDGE_MARGIN - hi * radius;
            if min <= max { c.clamp(min, max) } else { 0.5 }
        };
        Placement {
            centre: (clamp(cx, x0, x1), clamp(cy, y0, y1)),
            radius,
            rotation,
        }
    }
}

fn finite_or(x: f64, default: f64) -> f64 {
    if x.is_finite() { x } else { default }
}

/// The outline of a shape in units of its radius, centred on its centroid, y down, before
/// rotation. Proportions were picked so each shape is recognisable at ~9 px across (a
/// small object at 32 px): a fat star, thick cross arms.
fn outline(shape: Shape) -> Vec<(f64, f64)> {
    use std::f64::consts::{FRAC_PI_2, PI};
    let polar = |r: f64, a: f64| (r * a.cos(), r * a.sin());
    match shape {
        // The circle is drawn exactly, not as a polygon.
        Shape::Circle => Vec::new(),
        Shape::Square => {
            let s = 0.82;
            vec![(-s, -s), (s, -s), (s, s), (-s, s)]
        }
        // Equilateral, apex up; its circumcentre is its centroid.
        Shape::Triangle => (0..3)
            .map(|k| polar(1.0, -FRAC_PI_2 + k as f64 * 2.0 * PI / 3.0))
            .collect(),
        // Five points, one up; inner radius 0.46 of the outer keeps the arms thick.
        Shape::Star => (0..10)
            .map(|k| {
                polar(
                    if k % 2 == 0 { 1.05 } else { 0.48 },
                    -FRAC_PI_2 + k as f64 * PI / 5.0,
                )
            })
            .collect(),
        // An upright plus sign.
        Shape::Cross => {
            let (l, w) = (0.9, 0.3);
            vec![
                (-w, -l),
                (w, -l),
                (w, -w),
                (l, -w),
                (l, w),
                (w, w),
                (w, l),
                (-w, l),
                (-w, w),
                (-l, w),
                (-l, -w),
                (-w, -w),
            ]
        }
    }
}

/// Rotate `(x, y)` by `angle` (clockwise on screen, since y points down).
fn rotate((x, y): (f64, f64), angle: f64) -> (f64, f64) {
    let (s, c) = angle.sin_cos();
    (c * x - s * y, s * x + c * y)
}

/// Bounding box (x0, x1, y0, y1) of the rotated outline, in units of the radius.
fn local_extent(shape: Shape, rotation: f64) -> (f64, f64, f64, f64) {
    if shape == Shape::Circle {
        return (-1.0, 1.0, -1.0, 1.0);
    }
    outline(shape)
        .into_iter()
        .map(|p| rotate(p, rotation))
        .fold(
            (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
            |(x0, x1, y0, y1), (x, y)| (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
        )
}

/// Largest allowed render side: 4096² RGB is 48 MiB, ample for this world.
pub const MAX_RENDER_SIZE: usize = 4096;

/// Draw `scene` as a `size`×`size` RGB image, row-major, 3 bytes per pixel.
///
/// Anti-aliasing by coverage: each pixel row is cut into 32 horizontal scanlines, and on
/// each the covered length within every pixel is measured exactly. The geometry lives in
/// continuous image units, so a 2×2 box-downsample of the 64 px render matches the 32 px
/// render up to rounding.
pub fn render(scene: &Scene, size: usize) -> Result<Vec<u8>, String> {
    if size == 0 || size > MAX_RENDER_SIZE {
        return Err(format!(
            "render size {size} is outside 1..={MAX_RENDER_SIZE}"
        ));
    }
    let placement = scene.placement();
    let n = size as f64;
    // Everything below is in pixel units: pixel (i, j) covers [i, i+1] × [j, j+1].
    let (cx, cy) = (placement.centre.0 * n, placement.centre.1 * n);
    let r = placement.radius * n;
    let poly: Vec<(f64, f64)> = outline(scene.shape)
        .into_iter()
        .map(|p| {
            let (x, y) = rotate(p, placement.rotation);
            (cx + r * x, cy + r * y)
        })
        .collect();

    const LINES: usize = 32;
    let mut coverage = vec![0.0f64; size * size];
    let mut crossings: Vec<f64> = Vec::with_capacity(poly.len());
    for j in 0..size {
        let row = &mut coverage[j * size..(j + 1) * size];
        for t in 0..LINES {
            let y = j as f64 + (t as f64 + 0.5) / LINES as f64;
            // Where this scanline enters and leaves the shape (even-odd rule).
            crossings.clear();
            if scene.shape == Shape::Circle {
                let dy = y - cy;
                if dy.abs() < r {
                    let w = (r * r - dy * dy).sqrt();
                    crossings.extend([cx - w, cx + w]);
                }
            } else {
                for (k, &(ax, ay)) in poly.iter().enumerate() {
                    let (bx, by) = poly[(k + 1) % poly.len()];
                    if (ay > y) != (by > y) {
                        crossings.push(ax + (y - ay) * (bx - ax) / (by - ay));
                    }
                }
                crossings.sort_by(f64::total_cmp);
            }
            for span in crossings.chunks_exact(2) {
                add_span(row, span[0], span[1], 1.0 / LINES as f64);
            }
        }
    }
    let fg = scene.colour.rgb();
    let bg = scene.background.rgb();
    let mut out = Vec::with_capacity(size * size * 3);
    for a in coverage {
        let a = a.clamp(0.0, 1.0);
        for k in 0..3 {
            out.push(
                (bg[k] as f64 + (fg[k] as f64 - bg[k] as f64) * a)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    Ok(out)
}

/// Add `weight` × (length of [x0, x1] inside each pixel) to a row of coverage.
fn add_span(row: &mut [f64], x0: f64, x1: f64, weight: f64) {
    let x0 = x0.max(0.0);
    let x1 = x1.min(row.len() as f64);
    if x0.is_nan() || x1.is_nan() || x0 >= x1 {
        return; // empty, off-screen, or NaN
    }
    let (first, last) = (x0.floor() as usize, (x1.ceil() as usize).min(row.len()));
    for (i, cell) in row.iter_mut().enumerate().take(last).skip(first) {
        let covered = (x1.min(i as f64 + 1.0) - x0.max(i as f64)).max(0.0);
        *cell += weight * covered;
    }
}

// ---------------------------------------------------------------------------------------
// Captions
// ---------------------------------------------------------------------------------------

/// What a caption states about its image; `None` means the caption leaves it open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Mentioned {
    pub shape: Option<Shape>,
    pub colour: Option<Colour>,
    pub size: Option<Size>,
    pub position: Option<Position>,
    pub background: Option<Colour>,
}

/// How often each optional attribute is stated. The shape always is.
const P_COLOUR: f64 = 0.8;
const P_SIZE: f64 = 0.55;
const P_POSITION: f64 = 0.6;
const P_BACKGROUND: f64 = 0.5;

const PREFIXES: [&str; 4] = ["", "a picture of", "an image of", "a drawing of"];
/// Words the templates add besides the attribute phrases and prefixes.
const GLUE_WORDS: [&str; 6] = ["a", "an", "on", "against", "background", "with"];

/// A prompt's words, lower-cased, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The words of `prompt` that no caption of this world contains, in order, once each.
pub fn unknown_words(prompt: &str) -> Vec<String> {
    let known = vocabulary();
    let mut out: Vec<String> = Vec::new();
    for w in words(prompt) {
        if known.binary_search(&w.as_str()).is_err() && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// "a red circle", "an orange circle".
pub fn with_article(phrase: &str) -> String {
    if phrase.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {phrase}")
    } else {
        format!("a {phrase}")
    }
}

/// Write a caption for `scene`, drawing the wording and which attributes to leave out
/// from `rng`. Returns the caption and what it states; every stated attribute is true of
/// the scene.
///
/// Templates (`[..]` optional, NP = `[a|an] [size] [colour] shape`):
/// * `[prefix] NP [position] [background]`
/// * `[prefix] NP [background] [position]`
/// * `a|an <colour> background with NP [position]` (only when the background is stated)
///
/// with prefix one of "a picture of", "an image of", "a drawing of".
pub fn caption(scene: &Scene, rng: &mut SplitMix64) -> (String, Mentioned) {
    let mentioned = Mentioned {
        shape: Some(scene.shape),
        colour: rng.chance(P_COLOUR).then_some(scene.colour),
        size: rng.chance(P_SIZE).then_some(scene.size),
        position: rng.chance(P_POSITION).then_some(scene.position),
        background: rng.chance(P_BACKGROUND).then_some(scene.background),
    };
    let pick =
        |rng: &mut SplitMix64, items: &[&'static str]| rng.pick(items).copied().unwrap_or("");

    // The noun phrase: [article] [size] [colour] shape.
    let mut np: Vec<&str> = Vec::new();
    if let Some(s) = mentioned.size {
        np.push(pick(rng, s.phrases()));
    }
    if let Some(c) = mentioned.colour {
        np.push(pick(rng, c.phrases()));
    }
    np.push(pick(rng, scene.shape.phrases()));
    let np = np.join(" ");
    let np = if rng.chance(0.12) {
        np // a bare "red circle" now and then
    } else {
        with_article(&np)
    };

    let position = mentioned
        .position
        .map(|p| pick(rng, p.phrases()).to_string());
    let background = mentioned.background.map(|b| (b, pick(rng, b.phrases())));
    let mut parts: Vec<String> = Vec::new();
    match background {
        Some((_, word)) if rng.chance(0.25) => {
            parts.push(format!("{} background with {np}", with_article(word)));
            parts.extend(position);
        }
        _ => {
            let prefix = pick(rng, &PREFIXES);
            if !prefix.is_empty() {
                parts.push(prefix.to_string());
            }
            parts.push(np);
            let bg = background.map(|(_, word)| match rng.below(3) {
                0 => format!("on {} background", with_article(word)),
                1 => format!("on {word}"),
                _ => format!("against {} background", with_article(word)),
            });
            if rng.chance(0.5) {
                parts.extend(position);
                parts.extend(bg);
            } else {
                parts.extend(bg);
                parts.extend(position);
            }
        }
    }
    (parts.join(" "), mentioned)
}

/// Every word any caption can contain, sorted and without duplicates.
pub fn vocabulary() -> Vec<&'static str> {
    let mut words: Vec<&'static str> = Vec::new();
    let mut add = |phrase: &'static str| words.extend(phrase.split_whitespace());
    for s in Shape::ALL {
        s.phrases().iter().for_each(|p| add(p));
    }
    for c in Colour::ALL {
        c.phrases().iter().for_each(|p| add(p));
    }
    for s in Size::ALL {
        s.phrases().iter().for_each(|p| add(p));
    }
    for p in Position::ALL {
        p.phrases().iter().for_each(|p| add(p));
    }
    PREFIXES
        .iter()
        .chain(GLUE_WORDS.iter())
        .for_each(|p| add(p));
    words.sort_unstable();
    words.dedup();
    words
}

/// Read which attributes a caption (or a user's prompt in the same language) asks for.
///
/// Lenient by design: case and punctuation are ignored, unknown words are skipped, and if
/// an attribute is stated twice the first statement wins. A colour counts as the
/// background when it follows "on"/"against" (articles skipped) or precedes "background".
pub fn parse_caption(text: &str) -> Mentioned {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let is_article = |w: &str| matches!(w, "a" | "an" | "the");
    let mut m = Mentioned::default();
    let (mut vertical, mut horizontal, mut centre) = (None::<usize>, None::<usize>, false);
    for (i, &w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied();
        if let Some(colour) = colour_word(w) {
            let prev = words[..i].iter().rev().copied().find(|w| !is_article(w));
            let is_bg = next == Some("background") || matches!(prev, Some("on" | "against"));
            let slot = if is_bg {
                &mut m.background
            } else {
                &mut m.colour
            };
            slot.get_or_insert(colour);
            continue;
        }
        let shape = match w {
            "circle" | "disc" => Some(Shape::Circle),
            "square" => Some(Shape::Square),
            "triangle" => Some(Shape::Triangle),
            "star" => Some(Shape::Star),
            "cross" | "plus" => Some(Shape::Cross),
            _ => None,
        };
        if let Some(s) = shape {
            m.shape.get_or_insert(s);
            continue;
        }
        match w {
            "small" | "little" | "tiny" => {
                m.size.get_or_insert(Size::Small);
            }
            "large" | "big" => {
                m.size.get_or_insert(Size::Large);
            }
            "top" | "upper" => {
                vertical.get_or_insert(0);
            }
            "bottom" | "lower" => {
                vertical.get_or_insert(2);
            }
            "left" => {
                horizontal.get_or_insert(0);
            }
            "right" => {
                horizontal.get_or_insert(2);
            }
            "centre" | "center" | "middle" => centre = true,
            _ => {}
        }
    }
    if vertical.is_some() || horizontal.is_some() || centre {
        m.position = Position::from_cell(horizontal.unwrap_or(1), vertical.unwrap_or(1));
    }
    m
}

fn colour_word(w: &str) -> Option<Colour> {
    Colour::ALL
        .iter()
        .copied()
        .find(|c| c.phrases().contains(&w))
}

// ---------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------

/// One captioned image: a scene to render and what its caption says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub scene: Scene,
    pub caption: String,
    pub mentioned: Mentioned,
}

/// A seeded, infinite, random-access stream of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct World {
    pub seed: u64,
}

impl World {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// Sample number `index` of `split`: a pure function of `(seed, index, split)`.
    /// Train never yields a held-out (colour, shape) pair; HeldOut yields only those.
    pub fn sample(&self, index: u64, split: Split) -> Sample {
        let tag = match split {
            Split::Train => 1,
            Split::HeldOut => 2,
            Split::All => 3,
        };
        let mut rng = SplitMix64::new(mix(&[self.seed, tag, index]));
        let scene = random_scene(&mut rng, split);
        let (caption, mentioned) = caption(&scene, &mut rng);
        Sample {
            scene,
            caption,
            mentioned,
        }
    }

    /// `k` samples that share colour, background and size but differ in shape (as far as
    /// the split allows) and are placed independently: hard negatives for CLIP's
    /// contrastive loss. In random batches colour and background alone already tell almost
    /// every pair apart, and a CLIP trained only on those never learns shape.
    pub fn siblings(&self, index: u64, k: usize, split: Split) -> Vec<Sample> {
        let mut rng = SplitMix64::new(mix(&[self.seed, 4, index]));
        let base = random_scene(&mut rng, split);
        let mut shapes: Vec<Shape> = Shape::ALL
            .iter()
            .copied()
            .filter(|&s| s != base.shape && split_allows(split, base.colour, s))
            .collect();
        // Shuffle the other shapes; the base keeps its own first.
        for i in (1..shapes.len()).rev() {
            shapes.swap(i, rng.below(i + 1));
        }
        shapes.insert(0, base.shape);
        (0..k)
            .map(|i| {
                let mut scene = base;
                scene.shape = shapes[i % shapes.len()];
                if i > 0 {
                    scene.position = rng.pick(&Position::ALL).copied().unwrap_or(base.position);
                    scene.offset = jitter_offset(&mut rng);
                    scene.rotation = tilt(&mut rng, scene.shape);
                }
                let (caption, mentioned) = caption(&scene, &mut rng);
                Sample { scene, caption, mentioned }
            })
            .collect()
    }
}

fn split_allows(split: Split, colour: Colour, shape: Shape) -> bool {
    match split {
        Split::Train => !is_held_out(colour, shape),
        Split::HeldOut => is_held_out(colour, shape),
        Split::All => true,
    }
}

/// The centre's jitter around its position's anchor.
fn jitter_offset(rng: &mut SplitMix64) -> (f64, f64) {
    (rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03))
}

/// Small tilts only: enough to avoid pixel-perfect repeats, too little to turn a square
/// into a diamond or to make a triangle point sideways. Circles are not turned.
fn tilt(rng: &mut SplitMix64, shape: Shape) -> f64 {
    if shape == Shape::Circle { 0.0 } else { rng.uniform(-0.12, 0.12) }
}

fn random_scene(rng: &mut SplitMix64, split: Split) -> Scene {
    // Draw the pair uniformly from those the split allows, so every allowed pair is
    // equally common.
    let pairs: Vec<(Colour, Shape)> = Colour::ALL
        .iter()
        .flat_map(|&c| Shape::ALL.iter().map(move |&s| (c, s)))
        .filter(|&(c, s)| split_allows(split, c, s))
        .collect();
    let (colour, shape) = rng
        .pick(&pairs)
        .copied()
        .unwrap_or((Colour::Red, Shape::Circle));
    let backgrounds: Vec<Colour> = Colour::ALL
        .iter()
        .copied()
        .filter(|&c| c != colour)
        .collect();
    let background = rng.pick(&backgrounds).copied().unwrap_or(Colour::White);
    let size = rng.pick(&Size::ALL).copied().unwrap_or(Size::Small);
    let position = rng
        .pick(&Position::ALL)
        .copied()
        .unwrap_or(Position::Centre);
    let offset = jitter_offset(rng);
    let scale = rng.uniform(0.92, 1.08);
    let rotation = tilt(rng, shape);
    Scene {
        shape,
        colour,
        background,
        size,
        position,
        offset,
        scale,
        rotation,
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} on {}",
            self.size.name(),
            self.colour.name(),
            self.shape.name(),
            self.position.name(),
            self.background.name()
        )
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn every_generated_caption_uses_only_known_words_and_a_corgi_is_unknown() {
        let world = World::new(7);
        for i in 0..300 {
            let s = world.sample(i, Split::All);
            assert!(unknown_words(&s.caption).is_empty(), "{:?}: {:?}", s.caption, unknown_words(&s.caption));
        }
        assert_eq!(unknown_words("a Corgi playing a red trumpet, a corgi"), vec!["corgi", "playing", "trumpet"]);
    }

    #[test]
    fn siblings_differ_in_shape_and_share_colour_background_size() {
        let w = World::new(3);
        for i in 0..200 {
            let g = w.siblings(i, 4, Split::Train);
            assert_eq!(g, w.siblings(i, 4, Split::Train));
            let shapes: HashSet<_> = g.iter().map(|s| s.scene.shape).collect();
            assert_eq!(shapes.len(), 4, "{g:?}");
            for s in &g {
                assert_eq!(s.scene.colour, g[0].scene.colour);
                assert_eq!(s.scene.background, g[0].scene.background);
                assert_eq!(s.scene.size, g[0].scene.size);
                assert!(!is_held_out(s.scene.colour, s.scene.shape));
                assert_eq!(parse_caption(&s.caption), s.mentioned);
            }
        }
    }

    #[test]
    fn samples_are_deterministic() {
        let a = World::new(7);
        let b = World::new(7);
        for i in [0, 1, 2, 99, 12345, u64::MAX] {
            for split in [Split::Train, Split::HeldOut, Split::All] {
                assert_eq!(a.sample(i, split), b.sample(i, split));
            }
        }
        // Different seeds and indices give different samples.
        let distinct: HashSet<String> = (0..200).map(|i| a.sample(i, Split::All).caption).collect();
        assert!(
            distinct.len() > 150,
            "only {} distinct captions",
            distinct.len()
        );
        assert_ne!(
            World::new(1).sample(0, Split::All),
            World::new(2).sample(0, Split::All)
        );
        let img = |w: World| render(&w.sample(3, Split::Train).scene, 32).unwrap();
        assert_eq!(img(World::new(5)), img(World::new(5)));
    }

    #[test]
    fn held_out_pairs_respect_the_split() {
        let world = World::new(11);
        let mut train_pairs = HashSet::new();
        for i in 0..10_000 {
            let s = world.sample(i, Split::Train).scene;
            assert!(
                !is_held_out(s.colour, s.shape),
                "train sample {i} is held out: {}",
                s
            );
            train_pairs.insert((s.colour, s.shape));
        }
        assert_eq!(train_pairs.len(), 40 - held_out_pairs().len());
        let mut held = HashSet::new();
        for i in 0..1000 {
            let s = world.sample(i, Split::HeldOut).scene;
            assert!(is_held_out(s.colour, s.shape));
            held.insert((s.colour, s.shape));
        }
        assert_eq!(held.len(), held_out_pairs().len());
        // One pair per shape, and each colour and shape still occurs in training.
        let shapes: HashSet<Shape> = held_out_pairs().iter().map(|p| p.1).collect();
        assert_eq!(shapes.len(), Shape::ALL.len());
        for c in Colour::ALL {
            assert!(train_pairs.iter().any(|p| p.0 == c));
        }
    }

    #[test]
    fn vocabulary_is_small_covered_and_closed() {
        let vocab = vocabulary();
        println!("vocabulary ({} words): {}", vocab.len(), vocab.join(" "));
        assert!(vocab.len() < 100);
        let vocab_set: HashSet<&str> = vocab.iter().copied().collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let world = World::new(3);
        for i in 0..10_000 {
            let s = world.sample(i, Split::Train);
            for w in s.caption.split(' ') {
                assert!(
                    !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()),
                    "bad word {w:?} in {:?}",
                    s.caption
                );
                assert!(vocab_set.contains(w), "{w:?} missing from the vocabulary");
                *seen.entry(w.to_string()).or_default() += 1;
            }
        }
        for w in &vocab {
            assert!(seen.contains_key(*w), "vocabulary word {w:?} never used");
        }
    }

    #[test]
    fn captions_state_only_true_attributes() {
        let world = World::new(5);
        let mut counts = [0usize; 5];
        let n = 10_000;
        for i in 0..n {
            let s = world.sample(i, Split::All);
            let m = parse_caption(&s.caption);
            assert_eq!(m, s.mentioned, "caption {:?} of {}", s.caption, s.scene);
            let words: Vec<&str> = s.caption.split(' ').collect();
            for pair in words.windows(2) {
                let vowel = pair[1].starts_with(['a', 'e', 'i', 'o', 'u']);
                assert!(
                    !(pair[0] == "a" && vowel || pair[0] == "an" && !vowel),
                    "article in {:?}",
                    s.caption
                );
            }
            assert_eq!(m.shape, Some(s.scene.shape));
            assert!(m.colour.is_none_or(|c| c == s.scene.colour));
            assert!(m.size.is_none_or(|c| c == s.scene.size));
            assert!(m.position.is_none_or(|c| c == s.scene.position));
            assert!(m.background.is_none_or(|c| c == s.scene.background));
            assert_ne!(s.scene.colour, s.scene.background);
            let stated = [
                m.colour.is_some(),
                m.size.is_some(),
                m.position.is_some(),
                m.background.is_some(),
                true,
            ];
            for (c, b) in counts.iter_mut().zip(stated) {
                *c += b as usize;
            }
        }
        // Every optional attribute is sometimes stated and sometimes left out.
        for c in &counts[..4] {
            assert!(
                *c > n as usize / 5 && *c < n as usize * 9 / 10,
                "{counts:?}"
            );
        }
        for i in 0..8 {
            println!("{}", world.sample(i, Split::Train).caption);
        }
    }

    #[test]
    fn parse_caption_handles_prompts() {
        let m = parse_caption("A small blue star in the top left corner on a white background.");
        assert_eq!(m.shape, Some(Shape::Star));
        assert_eq!(m.colour, Some(Colour::Blue));
        assert_eq!(m.size, Some(Size::Small));
        assert_eq!(m.position, Some(Position::TopLeft));
        assert_eq!(m.background, Some(Colour::White));
        let m = parse_caption("a large green square on black");
        assert_eq!(
            (m.colour, m.background, m.size),
            (Some(Colour::Green), Some(Colour::Black), Some(Size::Large))
        );
        let m = parse_caption("a picture of a yellow triangle");
        assert_eq!(
            (m.shape, m.colour, m.background, m.position),
            (Some(Shape::Triangle), Some(Colour::Yellow), None, None)
        );
        let m = parse_caption("a white background with an orange plus sign at the bottom");
        assert_eq!(
            (m.shape, m.colour, m.background),
            (
                Some(Shape::Cross),
                Some(Colour::Orange),
                Some(Colour::White)
            )
        );
        assert_eq!(m.position, Some(Position::Bottom));
        assert_eq!(
            parse_caption("in the middle").position,
            Some(Position::Centre)
        );
        assert_eq!(parse_caption(""), Mentioned::default());
        assert_eq!(parse_caption("\u{0}ünïcode ✓ 123"), Mentioned::default());
    }

    #[test]
    fn palette_colours_are_far_apart() {
        let mut closest = f64::MAX;
        for (i, a) in Colour::ALL.iter().enumerate() {
            for b in &Colour::ALL[i + 1..] {
                let (p, q) = (a.rgb(), b.rgb());
                let d = (0..3)
                    .map(|k| (p[k] as f64 - q[k] as f64).powi(2))
                    .sum::<f64>();
                closest = closest.min(d.sqrt());
            }
        }
        assert!(closest > 90.0, "closest palette pair is {closest:.1} apart");
    }

    /// The rendered coverage adds up to the shape's nominal area.
    #[test]
    fn rendered_area_matches_unit_area() {
        for shape in Shape::ALL {
            let scene = Scene::new(
                shape,
                Colour::White,
                Colour::Black,
                Size::Large,
                Position::Centre,
            );
            let img = render(&scene, 128).unwrap();
            let (fg, bg) = (Colour::White.rgb()[0] as f64, Colour::Black.rgb()[0] as f64);
            let area: f64 = img.chunks(3).map(|p| (p[0] as f64 - bg) / (fg - bg)).sum();
            let expected = shape.unit_area() * (Size::Large.radius() * 128.0).powi(2);
            assert!(
                (area / expected - 1.0).abs() < 0.005,
                "{shape:?}: {area} vs {expected}"
            );
        }
    }

    #[test]
    fn render_rejects_bad_sizes_and_survives_bad_scenes() {
        let scene = Scene::new(
            Shape::Star,
            Colour::Red,
            Colour::White,
            Size::Large,
            Position::TopLeft,
        );
        assert!(render(&scene, 0).is_err());
        assert!(render(&scene, MAX_RENDER_SIZE + 1).is_err());
        assert_eq!(render(&scene, 1).unwrap().len(), 3);
        let weird = Scene {
            offset: (f64::NAN, f64::INFINITY),
            scale: -3.0,
            rotation: f64::NAN,
            ..scene
        };
        assert_eq!(render(&weird, 16).unwrap().len(), 16 * 16 * 3);
    }

    #[test]
    fn objects_stay_inside_the_frame_and_sizes_differ() {
        let world = World::new(9);
        for i in 0..2000 {
            let s = world.sample(i, Split::All).scene;
            let img = render(&s, 32).unwrap();
            let bg = s.background.rgb();
            // No object pixel on the outermost ring beyond a sliver of antialiasing.
            for k in 0..32 {
                for (x, y) in [(k, 0), (k, 31), (0, k), (31, k)] {
                    let p = &img[(y * 32 + x) * 3..][..3];
                    let d: i32 = (0..3)
                        .map(|c| (p[c] as i32 - bg[c] as i32).abs())
                        .max()
                        .unwrap_or(0);
                    assert!(d < 200, "sample {i} ({s}) covers the border at ({x},{y})");
                }
            }
        }
    }

    /// 2×2 box-downsample of a 64 px render against the 32 px render of the same scene.
    #[test]
    fn renders_agree_across_resolutions() {
        let world = World::new(13);
        let (mut total, mut count, mut worst) = (0u64, 0u64, 0i32);
        for i in 0..300 {
            let scene = world.sample(i, Split::All).scene;
            let small = render(&scene, 32).unwrap();
            let big = render(&scene, 64).unwrap();
            for y in 0..32 {
                for x in 0..32 {
                    for c in 0..3 {
                        let at = |yy: usize, xx: usize| big[(yy * 64 + xx) * 3 + c] as i32;
                        let mean = (at(2 * y, 2 * x)
                            + at(2 * y, 2 * x + 1)
                            + at(2 * y + 1, 2 * x)
                            + at(2 * y + 1, 2 * x + 1)) as f64
                            / 4.0;
                        let d = (mean.round() as i32 - small[(y * 32 + x) * 3 + c] as i32).abs();
                        total += d as u64;
                        count += 1;
                        worst = worst.max(d);
                    }
                }
            }
        }
        let mean = total as f64 / count as f64;
        println!("64→32 vs 32: mean |diff| {mean:.4}, max {worst}");
        assert!(mean < 0.05, "mean diff {mean}");
        assert!(worst <= 6, "max diff {worst}");
    }
}
