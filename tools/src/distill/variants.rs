//! Near-duplicate variants of the training texts (`tools/train/variants.py`): each group is a
//! text and edited copies of it (a negation, a dropped or swapped word, "There is no …", another
//! determiner; with `--wordnet`, synonyms, co-hyponyms, antonyms and the passive too). The
//! teacher labels every copy; the trainer puts whole groups into batches, so the fine
//! differences STS pairs test are in the loss. The dev texts' groups are the close-pair dev
//! check and are never trained on.

use std::path::Path;

use anyhow::Result;

use super::corpus::Corpus;
use super::recipe::VariantPlan;

/// The edits that make the variants, for a model card.
pub fn operations(wordnet: bool) -> &'static str {
    if wordnet {
        "negation, dropped and swapped words, \"There is no\", another determiner, WordNet \
         synonyms, co-hyponyms, antonyms, the passive"
    } else {
        "negation, dropped and swapped words, \"There is no\", another determiner"
    }
}

/// Writes the texts the script reads, runs it, and returns the variant texts in file order
/// (`work/variants.tsv` holds each one's group and split).
pub fn make(
    python: &str,
    work: &Path,
    corpus: &Corpus,
    plan: &VariantPlan,
    wordnet: Option<&Path>,
) -> Result<Vec<String>> {
    let lines = |t: &[String]| t.join("\n") + "\n";
    crate::output::write_whole(
        &work.join("texts-train.txt"),
        lines(&corpus.train).as_bytes(),
    )?;
    crate::output::write_whole(&work.join("texts-dev.txt"), lines(&corpus.dev).as_bytes())?;
    let mut args = vec![
        "--work".into(),
        work.as_os_str().to_owned(),
        "--sources".into(),
        plan.sources.to_string().into(),
        "--per-text".into(),
        plan.per_text.to_string().into(),
        "--seed".into(),
        plan.seed.to_string().into(),
        // Each source gives the same share of the sources of variants.
        "--source-lines".into(),
        corpus
            .sources
            .iter()
            .map(|(_, n)| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
            .into(),
    ];
    if let Some(w) = wordnet {
        args.push("--wordnet".into());
        args.push(w.as_os_str().to_owned());
    }
    super::run_python(python, "variants.py", &args, 1)?;
    crate::text::read_lines(&work.join("variants.txt"))
}
