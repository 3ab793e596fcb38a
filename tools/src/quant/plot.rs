//! The quantization report as a picture (SVG next to the JSON): where along the depth the integer
//! model drifts from fp32, and which channels have the outlier ranges that decide the int8 grids.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::calibrate::Stats;
use super::report::Fidelity;
use crate::fp32::Site;

const WIDTH: u32 = 900;
const PANEL: u32 = 300;

/// One colour per layer, distinguishable in print.
fn layer_colour(l: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    C[l % C.len()]
}

/// Renders the report: per-layer residual cosine, then per-channel max |x| (calibration, fp32)
/// at the two LayerNorm outputs that feed the linears, one colour per layer, log scale.
pub fn svg(fid: &Fidelity, stats: &Stats, hidden: usize) -> Result<String> {
    let mut out = String::new();
    draw(&mut out, fid, stats, hidden).map_err(|e| anyhow!("drawing the report: {e}"))?;
    Ok(out)
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(out: &mut String, fid: &Fidelity, stats: &Stats, hidden: usize) -> DrawResult {
    let root = SVGBackend::with_string(out, (WIDTH, 3 * PANEL)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let layers = fid.layer_cosine.len();

    // Residual stream cosine per layer, with the embedding's mean and worst for scale.
    let lo = fid
        .layer_cosine
        .iter()
        .copied()
        .fold(fid.worst_cosine, f64::min);
    let lo = (lo - 0.001).max(0.0);
    let mut c = ChartBuilder::on(&panels[0])
        .caption(
            format!(
                "int8 vs fp32 on {} held-out sentences: residual cosine per layer; embedding mean {:.5}, worst {:.5}",
                fid.sentences, fid.mean_cosine, fid.worst_cosine
            ),
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(layers as f64 - 0.5), lo..1.0f64)?;
    c.configure_mesh()
        .x_desc("layer")
        .y_desc("cosine")
        .x_labels(layers)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    let points = fid
        .layer_cosine
        .iter()
        .enumerate()
        .map(|(l, &v)| (l as f64, v));
    c.draw_series(LineSeries::new(points.clone(), &BLUE))?
        .label("residual stream (mean over tokens)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    c.draw_series(points.map(|p| Circle::new(p, 3, BLUE.filled())))?;
    for (v, colour, name) in [
        (fid.mean_cosine, GREEN, "embedding, mean"),
        (fid.worst_cosine, RED, "embedding, worst"),
    ] {
        c.draw_series(LineSeries::new(
            [(-0.5, v), (layers as f64 - 0.5, v)],
            colour,
        ))?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()?;

    for (panel, site, what) in [
        (&panels[1], Site::Ln1, "LayerNorm-1 output (FFN input)"),
        (
            &panels[2],
            Site::Ln2,
            "LayerNorm-2 output (next layer's input)",
        ),
    ] {
        let ranges: Vec<Vec<f32>> = (0..layers)
            .map(|l| stats.channels(site, l, hidden))
            .collect();
        let top = ranges.iter().flatten().copied().fold(1e-3f32, f32::max) as f64;
        // Dead channels (max 0 or nearly) sit on the floor instead of stretching the axis
        // down to them: three decades below the largest range is plenty to see the outliers.
        let floor = ranges
            .iter()
            .flatten()
            .map(|&v| v as f64)
            .filter(|&v| v > top * 1e-3)
            .fold(top, f64::min)
            * 0.7;
        let mut c = ChartBuilder::on(panel)
            .caption(
                format!("per-channel max |x| over calibration, {what}, one colour per layer"),
                ("sans-serif", 15),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..hidden as f64, (floor..top * 1.5).log_scale())?;
        c.configure_mesh()
            .x_desc("channel")
            .y_desc("max |x|")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
        for (l, r) in ranges.iter().enumerate() {
            let colour = layer_colour(l);
            c.draw_series(r.iter().enumerate().map(|(j, &v)| {
                Circle::new((j as f64, (v as f64).max(floor)), 2, colour.filled())
            }))?
            .label(format!("layer {l}"))
            .legend(move |(x, y)| Circle::new((x + 8, y), 3, colour.filled()));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
