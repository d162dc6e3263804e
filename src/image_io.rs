//! Reading pictures users drop or name (with limits, so a bad file is a message, not a
//! crash) and writing PNGs that carry their recipe.

use std::io::Cursor;
use std::path::Path;

use crate::pipeline::Picture;
use crate::recipe::Recipe;

/// Largest side and pixel count we decode; bigger files are refused before allocation.
pub const MAX_SIDE: u32 = 16384;
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

pub fn load_picture(path: &Path) -> Result<Picture, String> {
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{name}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{name}: not a file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{name}: file is too large ({} MB)", meta.len() / (1024 * 1024)));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    decode_picture(&bytes).map_err(|e| format!("{name}: {e}"))
}

/// Decodes an in-memory image file (PNG, JPEG, WebP, BMP, GIF) to RGB8.
pub fn decode_picture(bytes: &[u8]) -> Result<Picture, String> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {}", one_line(e)))?;
    if reader.format().is_none() {
        return Err("not an image (PNG, JPEG, WebP, BMP or GIF expected)".into());
    }
    let (w, h) = reader.into_dimensions().map_err(|e| format!("not a readable image: {}", one_line(e)))?;
    if w == 0 || h == 0 {
        return Err("image has no pixels".into());
    }
    if w > MAX_SIDE || h > MAX_SIDE || (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(format!("image is too large ({w}×{h}; at most {MAX_SIDE} px a side and 64 megapixels)"));
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(one_line)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("cannot decode image: {}", one_line(e)))?;
    let rgb = img.to_rgb8();
    Ok(Picture { width: rgb.width() as usize, height: rgb.height() as usize, rgb: rgb.into_raw() })
}

/// A decoder's message on one line: the image crate's JPEG errors, for one, end in a newline
/// (found by tests/mutations.rs).
fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// PNG bytes with the recipe in two text chunks: `parameters` (the A1111 convention other
/// tools read) and `unclip` (the exact JSON recipe this app restores from).
pub fn encode_png(p: &Picture, recipe: Option<&Recipe>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, p.width as u32, p.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(r) = recipe {
            // iTXt: prompts are UTF-8, and tEXt is Latin-1 only.
            enc.add_itxt_chunk("parameters".into(), r.parameters_text()).map_err(|e| e.to_string())?;
            enc.add_itxt_chunk("unclip".into(), r.to_json()).map_err(|e| e.to_string())?;
        }
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&p.rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

pub fn save_png(path: &Path, p: &Picture, recipe: Option<&Recipe>) -> Result<(), String> {
    let bytes = encode_png(p, recipe)?;
    crate::files::write_atomic(path, &bytes)
}

/// The recipe stored in a PNG made by this app, if any.
pub fn read_recipe(bytes: &[u8]) -> Option<Recipe> {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let reader = decoder.read_info().ok()?;
    let info = reader.info();
    let text = info
        .uncompressed_latin1_text
        .iter()
        .find(|c| c.keyword == "unclip")
        .map(|c| c.text.clone())
        .or_else(|| info.utf8_text.iter().find(|c| c.keyword == "unclip").and_then(|c| c.get_text().ok()))?;
    Recipe::from_json(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::decode_picture;

    #[test]
    fn a_truncated_jpeg_is_refused_in_one_line() {
        // The image crate's message for this ends in a newline (found by tests/mutations.rs).
        let rgb = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, 0]));
        let mut jpeg = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(rgb).write_to(&mut jpeg, image::ImageFormat::Jpeg).expect("encode");
        let mut jpeg = jpeg.into_inner();
        jpeg.truncate(jpeg.len() * 2 / 3);
        let err = decode_picture(&jpeg).expect_err("a truncated JPEG must be refused");
        assert!(!err.contains('\n') && !err.is_empty(), "{err:?}");
    }
}
