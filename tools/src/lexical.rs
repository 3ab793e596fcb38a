//! Lexical baselines: TF-IDF cosine and Okapi BM25, what a device could compute with no encoder
//! at all. `pith eval chat` scores a query (the last turn, or the whole context window) against
//! each candidate turn; `pith distill` scores SICK pairs and StackFAQ queries beside its student.
//!
//! Words: lowercased runs of Unicode letters, digits and `_` (the `\w+` of most IR toolkits). The
//! document frequencies come from the collection the lexicon is built over; `pith eval chat` builds
//! it over the distinct turns of the evaluated file, i.e. the candidate pool, as a retrieval system
//! indexes its own responses (a device would index its bank).
//! IDF is BM25's non-negative form `ln(1 + (N − n + 0.5) / (n + 0.5))` for both scorers; TF-IDF
//! uses sublinear term frequency `1 + ln tf` and L2-normalised vectors; BM25 uses k1 = 1.2,
//! b = 0.75 (the usual defaults, not tuned here).

use std::collections::HashMap;

/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;

/// The words of `text`.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A sparse vector: (word id, weight), sorted by id.
pub type Sparse = Vec<(u32, f64)>;

/// Document statistics of a collection, and every document's TF-IDF vector and term counts.
pub struct Lexicon {
    ids: HashMap<String, u32>,
    idf: Vec<f64>,
    avg_len: f64,
    /// Per document: term counts (sorted by id) and length in words.
    docs: Vec<(Vec<(u32, u32)>, usize)>,
    tfidf: Vec<Sparse>,
}

fn counts(ids: &[u32]) -> Vec<(u32, u32)> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for id in v {
        match out.last_mut() {
            Some((last, n)) if *last == id => *n += 1,
            _ => out.push((id, 1)),
        }
    }
    out
}

impl Lexicon {
    /// Indexes `docs` (each a text).
    pub fn new<S: AsRef<str>>(docs: &[S]) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        let mut tokenized = Vec::with_capacity(docs.len());
        for d in docs {
            let w: Vec<u32> = words(d.as_ref())
                .into_iter()
                .map(|w| {
                    let next = ids.len() as u32;
                    let id = *ids.entry(w).or_insert(next);
                    if id as usize == df.len() {
                        df.push(0);
                    }
                    id
                })
                .collect();
            let c = counts(&w);
            for &(id, _) in &c {
                df[id as usize] += 1;
            }
            tokenized.push((c, w.len()));
        }
        let n = docs.len() as f64;
        let idf: Vec<f64> = df
            .iter()
            .map(|&k| (1.0 + (n - k as f64 + 0.5) / (k as f64 + 0.5)).ln())
            .collect();
        let avg_len = tokenized.iter().map(|d| d.1).sum::<usize>() as f64 / n.max(1.0);
        let mut lex = Lexicon {
            ids,
            idf,
            avg_len,
            docs: tokenized,
            tfidf: Vec::new(),
        };
        lex.tfidf = lex.docs.iter().map(|(c, _)| lex.weigh(c)).collect();
        lex
    }

    /// Term counts of `texts` together, over the collection's words (others carry no IDF).
    pub fn query<S: AsRef<str>>(&self, texts: &[S]) -> Vec<(u32, u32)> {
        let ids: Vec<u32> = texts
            .iter()
            .flat_map(|t| words(t.as_ref()))
            .filter_map(|w| self.ids.get(&w).copied())
            .collect();
        counts(&ids)
    }

    /// The L2-normalised TF-IDF vector of term counts `c`.
    fn weigh(&self, c: &[(u32, u32)]) -> Sparse {
        let mut v: Sparse = c
            .iter()
            .map(|&(id, tf)| (id, (1.0 + (tf as f64).ln()) * self.idf[id as usize]))
            .collect();
        let norm = v.iter().map(|x| x.1 * x.1).sum::<f64>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| x.1 /= norm);
        }
        v
    }

    /// The TF-IDF vector of query counts `q` (weigh once, score every candidate).
    pub fn tfidf_query(&self, q: &[(u32, u32)]) -> Sparse {
        self.weigh(q)
    }

    /// TF-IDF cosine between two texts (words the collection lacks carry no weight).
    pub fn cosine(&self, a: &str, b: &str) -> f64 {
        dot(
            &self.tfidf_query(&self.query(&[a])),
            &self.tfidf_query(&self.query(&[b])),
        )
    }

    /// Number of documents indexed.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether no document is indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// TF-IDF cosine between a query vector and document `doc`.
    pub fn tfidf(&self, qv: &Sparse, doc: usize) -> f64 {
        dot(qv, &self.tfidf[doc])
    }

    /// BM25 score of document `doc` for query counts `q` (each query word counted once).
    pub fn bm25(&self, q: &[(u32, u32)], doc: usize) -> f64 {
        let (c, len) = &self.docs[doc];
        let norm = K1 * (1.0 - B + B * *len as f64 / self.avg_len.max(1e-9));
        let mut s = 0.0;
        let mut j = 0;
        for &(id, _) in q {
            while j < c.len() && c[j].0 < id {
                j += 1;
            }
            if j < c.len() && c[j].0 == id {
                let f = c[j].1 as f64;
                s += self.idf[id as usize] * f * (K1 + 1.0) / (f + norm);
            }
        }
        s
    }
}

fn dot(a: &Sparse, b: &Sparse) -> f64 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_alphanumeric_runs() {
        assert_eq!(
            words("Hi, it's Bob_2! Ça va?"),
            ["hi", "it", "s", "bob_2", "ça", "va"]
        );
        assert!(words(" ... ").is_empty());
    }

    /// Hand-computed on a three-document collection: "the cat", "the dog", "a cat sat".
    #[test]
    fn idf_tfidf_and_bm25_match_their_formulas() {
        let lex = Lexicon::new(&["the cat", "the dog", "a cat sat"]);
        let idf = |n: f64| (1.0 + (3.0 - n + 0.5) / (n + 0.5)).ln();
        let q = lex.query(&["cat"]);
        // TF-IDF: query = (cat); doc 0 = (the, cat) with weights idf(2), idf(2).
        let want = 1.0 / 2f64.sqrt();
        let qv = lex.tfidf_query(&q);
        assert!((lex.tfidf(&qv, 0) - want).abs() < 1e-12);
        assert_eq!(lex.tfidf(&qv, 1), 0.0);
        // BM25 of "cat" in doc 2 (3 words; average length 7/3).
        let norm = K1 * (1.0 - B + B * 3.0 / (7.0 / 3.0));
        let want = idf(2.0) * (K1 + 1.0) / (1.0 + norm);
        assert!((lex.bm25(&q, 2) - want).abs() < 1e-12);
        // Unknown words carry nothing; a context is the union of its turns' words.
        assert!(lex.query(&["zebra"]).is_empty());
        assert_eq!(lex.query(&["the cat", "cat"]).len(), 2);
        assert!(lex.bm25(&lex.query(&["the cat", "cat"]), 0) > lex.bm25(&q, 0));
    }
}
