//! The picture of one class: a projection and histograms, real rows against synthetic ones.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{stats, ClassReport};
use crate::error::{Error, Result};

/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans-LICENSE.txt`): text that looks the
/// same on every machine, headless ones included.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

const WIDTH: u32 = 1600;
const HEIGHT: u32 = 900;
const REAL: RGBColor = RGBColor(31, 119, 180);
const SYNTHETIC: RGBColor = RGBColor(230, 110, 0);
/// Points drawn per kind at most (every n-th row past that).
const POINTS: usize = 4000;
const BINS: usize = 24;

/// Writes the picture of class `c` to `path` (PNG).
pub(super) fn draw(path: &Path, c: &ClassReport) -> Result<()> {
    static FONT_ONCE: std::sync::Once = std::sync::Once::new();
    FONT_ONCE.call_once(|| {
        // The embedded font is a valid TrueType file; a failure would only lose the text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
    let failed = |e: &dyn std::fmt::Display| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("drawing the picture: {e}")),
    };
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(&e))?;
        let title = format!(
            "class {}: {} real rows (blue), {} synthetic (orange)",
            c.class, c.real_rows, c.synthetic_rows
        );
        let root = root.titled(&title, (FAMILY, 24)).map_err(|e| failed(&e))?;
        let (left, right) = root.split_horizontally(680);
        if c.closeness.is_some() {
            projection(&left, c).map_err(|e| failed(&e))?;
        }
        histograms(&right, c).map_err(|e| failed(&e))?;
        root.present().map_err(|e| failed(&e))?;
    }
    crate::table::write_atomic(path, |w| {
        let mut enc = png::Encoder::new(w, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
        Ok(())
    })
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type Drawn<'a> =
    std::result::Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

/// Every `n`-th point so that at most [`POINTS`] remain.
fn thin(points: &[(f32, f32)]) -> impl Iterator<Item = (f32, f32)> + '_ {
    points
        .iter()
        .copied()
        .step_by(points.len().div_ceil(POINTS).max(1))
}

/// The range of `v` from its 0.5th to its 99.5th percentile, widened where it is a point.
fn range(v: impl Iterator<Item = f32>) -> (f32, f32) {
    let v: Vec<f64> = v.map(f64::from).collect();
    if v.is_empty() {
        return (-1.0, 1.0);
    }
    let (lo, hi) = (stats::quantile(&v, 0.005), stats::quantile(&v, 0.995));
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    ((lo - pad) as f32, (hi + pad) as f32)
}

fn projection<'a>(area: &Area<'a>, c: &ClassReport) -> Drawn<'a> {
    let v = &c.view;
    let all = || v.real_points.iter().chain(&v.synthetic_points);
    let (x0, x1) = range(all().map(|p| p.0));
    let (y0, y1) = range(all().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(
            "principal axes of the real rows (standard units)",
            (FAMILY, 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(format!("PC1 ({:.0}% of variance)", 100.0 * v.shares[0]))
        .y_desc(format!("PC2 ({:.0}%)", 100.0 * v.shares[1]))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let inside = |&(x, y): &(f32, f32)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
    chart
        .draw_series(
            thin(&v.real_points)
                .filter(inside)
                .map(|p| Circle::new(p, 3, REAL.mix(0.6).filled())),
        )?
        .label("real")
        .legend(|p| Circle::new(p, 4, REAL.filled()));
    chart
        .draw_series(
            thin(&v.synthetic_points)
                .filter(inside)
                .map(|p| Circle::new(p, 2, SYNTHETIC.mix(0.45).filled())),
        )?
        .label("synthetic")
        .legend(|p| Circle::new(p, 4, SYNTHETIC.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// Density histograms of the features with the largest KS statistic, a panel each.
fn histograms<'a>(area: &Area<'a>, c: &ClassReport) -> Drawn<'a> {
    let h = &c.view.histograms;
    if h.is_empty() {
        return Ok(());
    }
    let cols = if h.len() > 4 { 3 } else { h.len().min(2) };
    let rows = h.len().div_ceil(cols);
    let panels = area.split_evenly((rows, cols));
    for (panel, (name, ks, real, synthetic)) in panels.iter().zip(h) {
        let (lo, hi) = range(real.iter().chain(synthetic).copied());
        let width = (hi - lo) / BINS as f32;
        let density = |v: &[f32]| -> Vec<f32> {
            let mut counts = [0.0f32; BINS];
            for &x in v {
                if x >= lo && x <= hi {
                    counts[(((x - lo) / width) as usize).min(BINS - 1)] += 1.0;
                }
            }
            let n = v.len().max(1) as f32;
            counts.iter().map(|c| c / (n * width)).collect()
        };
        let (dr, ds) = (density(real), density(synthetic));
        let top = dr.iter().chain(&ds).fold(0.0f32, |a, &b| a.max(b)) * 1.1 + f32::MIN_POSITIVE;
        let title: String = if name.chars().count() > 28 {
            name.chars().take(27).chain(['~']).collect()
        } else {
            name.clone()
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{title}   KS {ks:.2}"), (FAMILY, 13))
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(8)
            .build_cartesian_2d(lo..hi, 0.0f32..top)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_y_axis()
            .x_labels(4)
            .label_style((FAMILY, 10))
            .draw()?;
        let edge = |b: usize| lo + b as f32 * width;
        chart.draw_series(dr.iter().enumerate().map(|(b, &v)| {
            Rectangle::new([(edge(b), 0.0), (edge(b + 1), v)], REAL.mix(0.4).filled())
        }))?;
        // The synthetic rows as a step outline over the real bars.
        let steps = ds
            .iter()
            .enumerate()
            .flat_map(|(b, &v)| [(edge(b), v), (edge(b + 1), v)]);
        chart.draw_series(LineSeries::new(steps, SYNTHETIC.stroke_width(2)))?;
    }
    Ok(())
}
