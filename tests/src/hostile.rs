//! Hostile text every model test feeds its package: control characters, special-token look-alikes,
//! huge words and inputs, scripts the vocabularies lack, bidi and zero-width marks.

/// The texts (owned, since two of them are built at run time).
pub fn texts() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "\u{0}\u{1}\u{7f}",
        "[CLS][SEP][UNK][PAD][MASK]",
        "日本語の文章 العربية हिन्दी 🙂🙃",
        "\u{202e}reversed\u{200b}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(10_000));
    v.push("word ".repeat(5_000));
    v
}
