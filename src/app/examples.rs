//! "Try an example" inputs for the built-in model: pictures of its own world, rendered on
//! the spot (no files), so variations, interpolation and text diffs work out of the box.

use crate::pipeline::Picture;
use crate::train::world::{Colour, Position, Scene, Shape, Size, render};

/// A large centred object, as the built-in model's training pictures draw it.
pub fn picture(shape: Shape, colour: Colour, background: Colour) -> Option<Picture> {
    let scene = Scene {
        shape,
        colour,
        background,
        size: Size::Large,
        position: Position::Centre,
        offset: (0.0, 0.0),
        scale: 1.0,
        rotation: 0.0,
    };
    let size = 64;
    let rgb = render(&scene, size).ok()?;
    (rgb.len() == size * size * 3).then_some(Picture { width: size, height: size, rgb })
}

#[cfg(test)]
mod tests {
    #[test]
    fn example_pictures_are_whole_rgb_images_in_their_colours() {
        use super::*;
        let p = picture(Shape::Circle, Colour::Orange, Colour::White).expect("renders");
        assert_eq!(p.rgb.len(), 64 * 64 * 3);
        // The centre is the object's colour, the corner the background's.
        let at = |x: usize, y: usize| &p.rgb[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3];
        assert_ne!(at(32, 32), at(1, 1));
        assert!(at(1, 1).iter().all(|v| *v > 200), "white background: {:?}", at(1, 1));
    }
}
