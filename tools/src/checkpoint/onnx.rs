//! Reading back the fp32 ONNX graph that `pith export` writes, as the same [`Checkpoint`] the
//! source directory loads to, so `pith quantize` accepts either.
//!
//! Format "1" of such a file: every weight initializer is named after its Hugging Face tensor
//! (`encoder.layer.0.attention.self.query.weight`, `embeddings.word_embeddings.weight`, ...);
//! linear weights are stored transposed (`[in, out]`, marked in their doc string), everything else
//! as the checkpoint has it, the position and token-type tables unfolded. The model's
//! `metadata_props` carry what is not a tensor: `pith.format`, `pith.config` (shapes, pooling,
//! normalization, tokenizer settings, name, as JSON) and `pith.vocab` (one token a line, id order).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use ndarray::{Array1, Array2};
use prost::Message;
use tract_onnx::pb::{tensor_proto::DataType, ModelProto, TensorProto};

use crate::checkpoint::{BertConfig, Checkpoint, Layer};
use crate::onnx::metadata::{ExportConfig, CONFIG_KEY, FORMAT_KEY, FORMAT_VERSION, VOCAB_KEY};
use crate::onnx::{
    layer_prefix, ln_module, Lin, EMB_LN, POS_EMB, REL_BIAS, TRANSPOSED_DOC, TYPE_EMB, WORD_EMB,
};

/// The graph's initializers by name.
struct Inits<'a> {
    map: HashMap<&'a str, &'a TensorProto>,
}

impl<'a> Inits<'a> {
    /// The fp32 values of `name`, checking its shape is `dims`.
    fn floats(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .map
            .get(name)
            .with_context(|| format!("the ONNX graph lacks initializer `{name}`"))?;
        ensure!(
            t.data_type == DataType::Float as i32,
            "initializer `{name}` is not fp32"
        );
        let have: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        ensure!(
            have == dims,
            "initializer `{name}` has shape {have:?}, expected {dims:?}"
        );
        let n: usize = dims.iter().product();
        let data: Vec<f32> = if !t.raw_data.is_empty() {
            // ONNX raw_data is little-endian whatever the host.
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            t.float_data.clone()
        };
        ensure!(
            data.len() == n,
            "initializer `{name}` holds {} values, its shape needs {n}",
            data.len()
        );
        Ok(data)
    }

    fn rows(&self, name: &str) -> Result<usize> {
        let t = self
            .map
            .get(name)
            .with_context(|| format!("the ONNX graph lacks initializer `{name}`"))?;
        ensure!(t.dims.len() == 2, "initializer `{name}` is not a matrix");
        Ok(t.dims[0] as usize)
    }

    fn mat(&self, name: &str, r: usize, c: usize) -> Result<Array2<f32>> {
        Ok(Array2::from_shape_vec((r, c), self.floats(name, &[r, c])?)?)
    }

    fn vec(&self, name: &str, n: usize) -> Result<Array1<f32>> {
        Ok(Array1::from(self.floats(name, &[n])?))
    }

    /// Weight (back in PyTorch `[out, in]` layout) and bias of linear `lin` of `layer`.
    fn linear(
        &self,
        layer: usize,
        lin: Lin,
        out: usize,
        inp: usize,
    ) -> Result<(Array2<f32>, Array1<f32>)> {
        let module = format!("{}{}", layer_prefix(layer), lin.hf_module());
        let wname = format!("{module}.weight");
        let doc = self
            .map
            .get(wname.as_str())
            .map(|t| t.doc_string.as_str())
            .unwrap_or_default();
        ensure!(
            doc == TRANSPOSED_DOC,
            "initializer `{wname}` is not marked as a transposed linear weight"
        );
        let wt = self.mat(&wname, inp, out)?;
        // Transposing is a copy of the same values, so every bit comes back.
        let w = wt.reversed_axes().as_standard_layout().into_owned();
        Ok((w, self.vec(&format!("{module}.bias"), out)?))
    }
}

impl Checkpoint {
    /// Reads an fp32 ONNX written by `pith export` back into the checkpoint it was exported from.
    pub fn from_onnx(path: &Path) -> Result<Checkpoint> {
        let bytes = crate::input::bytes(path)?;
        let model = ModelProto::decode(bytes.as_slice())
            .with_context(|| format!("{} is not an ONNX model", path.display()))?;
        let meta: HashMap<&str, &str> = model
            .metadata_props
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        let Some(config_text) = meta.get(CONFIG_KEY) else {
            bail!(
                "{} has no `{CONFIG_KEY}` metadata, so it was not written by `pith export`: only \
                 `pith export` fp32 graphs can be quantized from ONNX (quantize the checkpoint \
                 directory instead, or export it with `pith export DIR -o FILE.onnx`)",
                path.display()
            );
        };
        match meta.get(FORMAT_KEY) {
            Some(&FORMAT_VERSION) => {}
            Some(v) => bail!(
                "{} is pith export format {v}; this pith reads format {FORMAT_VERSION}",
                path.display()
            ),
            None => bail!(
                "{} has `{CONFIG_KEY}` but no `{FORMAT_KEY}` metadata",
                path.display()
            ),
        }
        let cfg: ExportConfig = serde_json::from_str(config_text)
            .with_context(|| format!("{}: parsing `{CONFIG_KEY}`", path.display()))?;
        let config = BertConfig {
            vocab_size: cfg.vocab_size,
            hidden: cfg.hidden,
            layers: cfg.layers,
            heads: cfg.heads,
            ffn: cfg.ffn,
            max_positions: cfg.max_positions,
            layer_norm_eps: cfg.layer_norm_eps as f32,
            rel_buckets: cfg.rel_buckets,
        };
        config.validate(&format!("{} (`{CONFIG_KEY}` metadata)", path.display()))?;
        let (pooling, normalize, tokenizer) = (cfg.pooling.into(), cfg.normalize, cfg.tokenizer);
        let name = match cfg.name {
            Some(n) => n,
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into()),
        };

        let vocab_text = meta
            .get(VOCAB_KEY)
            .with_context(|| format!("{} lacks `{VOCAB_KEY}` metadata", path.display()))?;
        let vocab: Vec<String> = vocab_text.split('\n').map(str::to_string).collect();
        ensure!(
            vocab.len() == config.vocab_size,
            "`{VOCAB_KEY}` has {} tokens, `{CONFIG_KEY}` says {}",
            vocab.len(),
            config.vocab_size
        );

        let graph = model
            .graph
            .as_ref()
            .with_context(|| format!("{} has no graph", path.display()))?;
        let inits = Inits {
            map: graph
                .initializer
                .iter()
                .map(|t| (t.name.as_str(), t))
                .collect(),
        };
        let (h, f) = (config.hidden, config.ffn);
        let mut layers = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let (wq, bq) = inits.linear(l, Lin::Q, h, h)?;
            let (wk, bk) = inits.linear(l, Lin::K, h, h)?;
            let (wv, bv) = inits.linear(l, Lin::V, h, h)?;
            let (wo, bo) = inits.linear(l, Lin::O, h, h)?;
            let (w1, b1) = inits.linear(l, Lin::Up, f, h)?;
            let (w2, b2) = inits.linear(l, Lin::Down, h, f)?;
            let (ln1, ln2) = (ln_module(l, 1), ln_module(l, 2));
            layers.push(Layer {
                wq,
                bq,
                wk,
                bk,
                wv,
                bv,
                wo,
                bo,
                ln1_g: inits.vec(&format!("{ln1}.weight"), h)?,
                ln1_b: inits.vec(&format!("{ln1}.bias"), h)?,
                w1,
                b1,
                w2,
                b2,
                ln2_g: inits.vec(&format!("{ln2}.weight"), h)?,
                ln2_b: inits.vec(&format!("{ln2}.bias"), h)?,
            });
        }
        let word_emb = inits.mat(WORD_EMB, config.vocab_size, h)?;
        let pos_emb = inits.mat(POS_EMB, config.max_positions, h)?;
        let type_emb = inits.mat(TYPE_EMB, inits.rows(TYPE_EMB)?, h)?;
        ensure!(type_emb.nrows() > 0, "initializer `{TYPE_EMB}` has no rows");
        let emb_ln_g = inits.vec(&format!("{EMB_LN}.weight"), h)?;
        let emb_ln_b = inits.vec(&format!("{EMB_LN}.bias"), h)?;
        let rel_bias = match config.rel_buckets {
            0 => None,
            b => Some(inits.mat(REL_BIAS, b, config.heads)?),
        };
        Ok(Checkpoint {
            name,
            config,
            word_emb,
            pos_emb,
            type_emb,
            emb_ln_g,
            emb_ln_b,
            layers,
            rel_bias,
            vocab,
            tokenizer,
            pooling,
            normalize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fp32 value and setting comes back bit for bit from an in-memory export.
    #[test]
    fn round_trip_is_exact() {
        let dir = crate::defaults::checkpoint_dir().unwrap();
        assert!(
            dir.join("model.safetensors").is_file(),
            "{} is missing: run scripts/fetch-model.sh",
            dir.display()
        );
        let a = Checkpoint::load(&dir).unwrap();
        let model = crate::onnx::fp32_model(&a).unwrap();
        let path = std::env::temp_dir().join(format!("pith-ckonnx-{}.onnx", std::process::id()));
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let b = Checkpoint::from_onnx(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let bits2 = |x: &Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let bits1 = |x: &Array1<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(a.name, b.name);
        assert_eq!(format!("{:?}", a.config), format!("{:?}", b.config));
        assert_eq!(
            a.config.layer_norm_eps.to_bits(),
            b.config.layer_norm_eps.to_bits()
        );
        assert_eq!(a.vocab, b.vocab);
        assert_eq!(a.tokenizer, b.tokenizer);
        assert_eq!(a.pooling, b.pooling);
        assert_eq!(a.normalize, b.normalize);
        for (x, y) in [
            (&a.word_emb, &b.word_emb),
            (&a.pos_emb, &b.pos_emb),
            (&a.type_emb, &b.type_emb),
        ] {
            assert_eq!(x.dim(), y.dim());
            assert_eq!(bits2(x), bits2(y));
        }
        assert_eq!(bits1(&a.emb_ln_g), bits1(&b.emb_ln_g));
        assert_eq!(bits1(&a.emb_ln_b), bits1(&b.emb_ln_b));
        assert_eq!(a.layers.len(), b.layers.len());
        for (x, y) in a.layers.iter().zip(&b.layers) {
            for (p, q) in [
                (&x.wq, &y.wq),
                (&x.wk, &y.wk),
                (&x.wv, &y.wv),
                (&x.wo, &y.wo),
                (&x.w1, &y.w1),
                (&x.w2, &y.w2),
            ] {
                assert_eq!(p.dim(), q.dim());
                assert_eq!(bits2(p), bits2(q));
            }
            for (p, q) in [
                (&x.bq, &y.bq),
                (&x.bk, &y.bk),
                (&x.bv, &y.bv),
                (&x.bo, &y.bo),
                (&x.b1, &y.b1),
                (&x.b2, &y.b2),
                (&x.ln1_g, &y.ln1_g),
                (&x.ln1_b, &y.ln1_b),
                (&x.ln2_g, &y.ln2_g),
                (&x.ln2_b, &y.ln2_b),
            ] {
                assert_eq!(bits1(p), bits1(q));
            }
        }
    }
}
