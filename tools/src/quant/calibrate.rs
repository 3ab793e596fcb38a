//! Static calibration: run the fp32 model over sentences and keep per-channel absolute maxima at
//! every quantization site.

use std::collections::HashMap;

use ndarray::Array2;
use rayon::prelude::*;

use crate::checkpoint::Checkpoint;
use crate::fp32::{self, Observer, Site};

/// Per-channel max |x| for every (site, layer).
#[derive(Default, Clone)]
pub struct Stats {
    pub max: HashMap<(Site, usize), Vec<f32>>,
}

impl Observer for Stats {
    fn see(&mut self, site: Site, layer: usize, x: &Array2<f32>) {
        let e = self
            .max
            .entry((site, layer))
            .or_insert_with(|| vec![0.0; x.ncols()]);
        for row in x.rows() {
            for (m, v) in e.iter_mut().zip(row) {
                *m = m.max(v.abs());
            }
        }
    }
}

impl Stats {
    pub fn merge(mut self, other: Stats) -> Stats {
        for (k, v) in other.max {
            let e = self.max.entry(k).or_insert_with(|| vec![0.0; v.len()]);
            for (a, b) in e.iter_mut().zip(v) {
                *a = a.max(b);
            }
        }
        self
    }

    /// Per-channel maxima of a site (zeros if never seen).
    pub fn channels(&self, site: Site, layer: usize, n: usize) -> Vec<f32> {
        self.max
            .get(&(site, layer))
            .cloned()
            .unwrap_or_else(|| vec![0.0; n])
    }

    /// Per-tensor max of a site, never zero (a dead tensor still needs a valid grid).
    pub fn tensor(&self, site: Site, layer: usize) -> f32 {
        self.max
            .get(&(site, layer))
            .map(|v| v.iter().cloned().fold(0.0f32, f32::max))
            .unwrap_or(0.0)
            .max(1e-6)
    }
}

/// Runs every tokenized sentence through the fp32 model, in parallel, with a progress bar.
pub fn calibrate(ck: &Checkpoint, sentences: &[Vec<u32>]) -> Stats {
    let bar = indicatif::ProgressBar::new(sentences.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "calibrating {bar:40} {pos}/{len} sentences [{elapsed}<{eta}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let stats = sentences
        .par_iter()
        .fold(Stats::default, |mut st, ids| {
            fp32::embed(ck, ids, &mut st);
            bar.inc(1);
            st
        })
        .reduce(Stats::default, Stats::merge);
    bar.finish_and_clear();
    stats
}
