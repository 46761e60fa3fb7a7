//! The demo's picture: rows of 8 x 8 digit images as a grayscale PNG.

use std::path::Path;

use ndarray::ArrayView2;
use smrt::Error;

/// Pixels per image pixel.
const ZOOM: usize = 6;
/// Blank pixels around each image.
const GAP: usize = 4;
/// Digits data values run from 0 (blank) to 16 (ink).
const INK: f32 = 16.0;

/// Writes one row of images per entry of `rows` (each `n x 64`, values 0..16, drawn dark on
/// light), `columns` images per row, as a PNG at `path`.
pub fn digit_grid(path: &Path, rows: &[ArrayView2<'_, f32>], columns: usize) -> Result<(), Error> {
    let cell = 8 * ZOOM + GAP;
    let (width, height) = (columns * cell + GAP, rows.len() * cell + GAP);
    let mut pixels = vec![255u8; width * height];
    for (r, images) in rows.iter().enumerate() {
        for (c, image) in images.rows().into_iter().take(columns).enumerate() {
            for (p, &v) in image.iter().enumerate() {
                let shade = 255.0 - (v / INK).clamp(0.0, 1.0) * 255.0;
                let (py, px) = (p / 8, p % 8);
                for dy in 0..ZOOM {
                    let y = GAP + r * cell + py * ZOOM + dy;
                    let x0 = GAP + c * cell + px * ZOOM;
                    pixels[y * width + x0..y * width + x0 + ZOOM].fill(shade as u8);
                }
            }
        }
    }
    smrt::table::write_atomic(path, |w| {
        let mut enc = png::Encoder::new(w, width as u32, height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(&pixels)?;
        Ok(())
    })
}
