//! Reading bank sources: JSONL records, Markdown sections or plain lines.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// One entry as read from a source, before embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub id: String,
    pub question: String,
    pub answer: String,
}

/// How a source file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceFormat {
    /// One JSON object a line: `question` and `answer` (optional `id`), or `text`.
    Jsonl,
    /// A heading and the body under it are an entry (heading = question, body = answer).
    Markdown,
    /// A non-empty line is an entry (question = answer = the line).
    Text,
}

/// The format a file's extension implies (plain text when unknown).
pub fn detect(path: &Path) -> SourceFormat {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jsonl" | "json" | "ndjson") => SourceFormat::Jsonl,
        Some("md" | "markdown") => SourceFormat::Markdown,
        _ => SourceFormat::Text,
    }
}

/// Reads the entries of `path` (format from `format` or the extension).
pub fn read_source(path: &Path, format: Option<SourceFormat>) -> Result<Vec<SourceEntry>> {
    let text = crate::input::text(path)?;
    let entries = match format.unwrap_or_else(|| detect(path)) {
        SourceFormat::Jsonl => {
            parse_jsonl(&text).with_context(|| format!("in {}", path.display()))?
        }
        SourceFormat::Markdown => parse_markdown(&text),
        SourceFormat::Text => parse_text(&text),
    };
    if entries.is_empty() {
        bail!("{} holds no entries", path.display());
    }
    Ok(entries)
}

/// Collapses every run of whitespace (newlines included) into one space: the device prints an
/// answer on a single console line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A text field: `None` when absent or null; a string (collapsed to one line, not empty) when
/// present; anything else is an error rather than a silent fallback to another field.
fn text_field(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    line: usize,
) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = one_line(s);
            if s.is_empty() {
                bail!("line {line}: `{key}` is empty");
            }
            Ok(Some(s))
        }
        Some(v) => bail!("line {line}: `{key}` must be a string, not {v}"),
    }
}

/// The `id` field: a string or an integer; `None` when absent.
fn id(obj: &serde_json::Map<String, Value>, line: usize) -> Result<Option<String>> {
    match obj.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(one_line(s))),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(v) => bail!("line {line}: `id` must be a non-empty string or an integer, not {v}"),
    }
}

/// JSONL: `{"id"?, "question", "answer"}` or `{"id"?, "text"}`; a missing id becomes the ordinal.
/// Ids must be unique: `ask` and the calibration queries name entries by id.
pub fn parse_jsonl(text: &str) -> Result<Vec<SourceEntry>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).with_context(|| format!("line {n}: not JSON"))?;
        let Some(obj) = v.as_object() else {
            bail!("line {n}: expected a JSON object")
        };
        let id = id(obj, n)?.unwrap_or_else(|| out.len().to_string());
        let (question, answer) = match (
            text_field(obj, "question", n)?,
            text_field(obj, "answer", n)?,
            text_field(obj, "text", n)?,
        ) {
            (Some(q), Some(a), None) => (q, a),
            (Some(q), None, None) => (q.clone(), q),
            (None, None, Some(t)) => (t.clone(), t),
            (_, _, Some(_)) => {
                bail!("line {n}: `text` cannot be combined with `question`/`answer`")
            }
            _ => bail!("line {n}: needs \"question\" (and \"answer\") or \"text\""),
        };
        if let Some(first) = seen.insert(id.clone(), n) {
            bail!("line {n}: id {id:?} was already used on line {first}");
        }
        out.push(SourceEntry {
            id,
            question,
            answer,
        });
    }
    Ok(out)
}

/// The text of an ATX heading line (`# Title`, up to six `#`), if `line` is one.
fn heading(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let hashes = t.len() - t.trim_start_matches('#').len();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &t[hashes..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim())
}

/// Markdown: each heading opens an entry whose answer is the text up to the next heading. Text
/// before the first heading and headings without a body (section titles) are skipped; `#` lines
/// inside fenced code blocks are body text.
pub fn parse_markdown(text: &str) -> Vec<SourceEntry> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    let mut in_fence = false;
    let close = |cur: Option<(String, Vec<&str>)>, out: &mut Vec<SourceEntry>| {
        if let Some((q, body)) = cur {
            let answer = one_line(&body.join("\n"));
            if !q.is_empty() && !answer.is_empty() {
                out.push(SourceEntry {
                    id: out.len().to_string(),
                    question: one_line(&q),
                    answer,
                });
            }
        }
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        match heading(line).filter(|_| !in_fence) {
            Some(h) => {
                close(current.take(), &mut out);
                current = Some((h.to_string(), Vec::new()));
            }
            None => {
                if let Some((_, body)) = current.as_mut() {
                    body.push(line);
                }
            }
        }
    }
    close(current, &mut out);
    out
}

/// Plain text: every non-empty line is an entry, its own question and answer.
pub fn parse_text(text: &str) -> Vec<SourceEntry> {
    text.lines()
        .map(one_line)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| SourceEntry {
            id: i.to_string(),
            question: l.clone(),
            answer: l,
        })
        .collect()
}

/// Reads `id<TAB>query` lines (blank lines skipped).
pub fn read_queries(path: &Path) -> Result<Vec<(String, String)>> {
    let text = crate::input::text(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((id, q)) = line.split_once('\t') else {
            bail!("{}:{}: expected id<TAB>query", path.display(), n + 1)
        };
        if q.trim().is_empty() {
            bail!("{}:{}: the query is empty", path.display(), n + 1)
        }
        out.push((id.trim().to_string(), q.trim().to_string()));
    }
    // No queries would be reported as a result (a top-1 of 0, a threshold from nothing).
    if out.is_empty() {
        bail!("{}: no queries (id<TAB>query lines)", path.display())
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_sections_become_entries() {
        let md = "intro\n# FAQ\n## How do I reset?\nHold the button\nfor 5 s.\n\n## Why?\n```\n# not a heading\n```\n";
        let e = parse_markdown(md);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].question, "How do I reset?");
        assert_eq!(e[0].answer, "Hold the button for 5 s.");
        assert_eq!(e[1].answer, "``` # not a heading ```");
        assert_eq!(e[1].id, "1");
    }

    #[test]
    fn jsonl_forms() {
        let j = "{\"id\": 7, \"question\": \"q\", \"answer\": \"a\"}\n\n{\"text\": \"t  x\"}\n";
        let e = parse_jsonl(j).unwrap();
        assert_eq!(
            e[0],
            SourceEntry {
                id: "7".into(),
                question: "q".into(),
                answer: "a".into()
            }
        );
        assert_eq!(
            e[1],
            SourceEntry {
                id: "1".into(),
                question: "t x".into(),
                answer: "t x".into()
            }
        );
        assert!(parse_jsonl("{\"answer\": 1}").is_err());
    }

    #[test]
    fn jsonl_refuses_what_it_would_otherwise_guess() {
        let err = |j: &str| format!("{:#}", parse_jsonl(j).unwrap_err());
        assert!(err("{\"question\": \"q\", \"answer\": 42}").contains("`answer` must be a string"));
        assert!(err("{\"question\": \"q\", \"answer\": [\"a\"]}").contains("line 1"));
        assert!(err("{\"question\": \"  \", \"answer\": \"a\"}").contains("`question` is empty"));
        let dup = "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"a\", \"text\": \"y\"}";
        assert!(err(dup).contains("line 2: id \"a\" was already used on line 1"));
        // An ordinal id that collides with an explicit one is a duplicate too.
        assert!(err("{\"id\": \"1\", \"text\": \"x\"}\n{\"text\": \"y\"}").contains("already used"));
        assert!(err("{\"id\": 1.5, \"text\": \"x\"}").contains("`id` must be"));
    }

    #[test]
    fn headings() {
        assert_eq!(heading("### Title ##"), Some("Title"));
        assert_eq!(heading("#hashtag"), None);
        assert_eq!(heading("####### seven"), None);
    }
}
