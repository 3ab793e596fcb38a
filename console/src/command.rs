//! Command parser: one checked line in, one [`Command`] out. Borrows from the line, never fails.

/// A parsed console command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// Blank line: no reply, just a new prompt.
    Empty,
    /// `help`
    Help,
    /// `info`
    Info,
    /// `embed TEXT`
    Embed(&'a str),
    /// `sim A | B`
    Sim(&'a str, &'a str),
    /// `ask QUESTION`
    Ask(&'a str),
    /// `chat TEXT`: one conversation turn, answered from the response bank.
    Chat(&'a str),
    /// `chat reset`: forget the conversation.
    ChatReset,
    /// `kb`: the knowledge bank's size and entry count.
    Kb,
    /// `bench [TEXT]`: without text, a fixed 16-token sentence.
    Bench(Option<&'a str>),
    /// `kcheck [SEED]`: the kernels' property check against the scalar oracle, on this core.
    KernelCheck(u32),
    /// `echo on|off`: off also hides the prompt, for programs.
    Echo(bool),
    /// `frame`: switch to framed binary mode.
    Frame,
    /// Something else; the text is the reason shown after `ERR 2`.
    Invalid(&'static str),
}

/// Usage lines, printed by `help`.
pub const HELP: &[&str] = &[
    "help              this list",
    "info              model, board, flash and RAM",
    "embed TEXT        int8 embedding: tokens, FNV-1a digest, first 8 values",
    "sim A | B         cosine similarity of two texts",
    "ask QUESTION      best answer from the knowledge bank (or: no confident answer)",
    "chat TEXT         next turn of a conversation, from the response bank",
    "chat reset        forget the conversation",
    "kb                knowledge bank: entries, bytes, abstain threshold",
    "bench [TEXT]      ns per embedding and per stage (instructions under qemu -icount)",
    "kcheck [SEED]     check the int8 kernels against the scalar oracle on this core",
    "echo on|off       terminal echo and prompt (off for programs)",
    "frame             switch to framed binary mode (postcard in COBS frames)",
];

/// Parses one line.
pub fn parse(line: &str) -> Command<'_> {
    let line = line.trim();
    let (word, rest) = match line.split_once(' ') {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    match word {
        "" => Command::Empty,
        "help" | "?" => Command::Help,
        "info" => Command::Info,
        "frame" => Command::Frame,
        "embed" if rest.is_empty() => Command::Invalid("usage: embed TEXT"),
        "embed" => Command::Embed(rest),
        "ask" if rest.is_empty() => Command::Invalid("usage: ask QUESTION"),
        "ask" => Command::Ask(rest),
        "chat" if rest.is_empty() => Command::Invalid("usage: chat TEXT | chat reset"),
        "chat" if rest == "reset" => Command::ChatReset,
        "chat" => Command::Chat(rest),
        "kb" => Command::Kb,
        "kcheck" if rest.is_empty() => Command::KernelCheck(1),
        "kcheck" => match rest.parse() {
            Ok(seed) => Command::KernelCheck(seed),
            Err(_) => Command::Invalid("usage: kcheck [SEED]"),
        },
        "bench" => Command::Bench(if rest.is_empty() { None } else { Some(rest) }),
        "sim" => match rest.split_once('|') {
            Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
                Command::Sim(a.trim(), b.trim())
            }
            _ => Command::Invalid("usage: sim A | B"),
        },
        "echo" => match rest {
            "on" => Command::Echo(true),
            "off" => Command::Echo(false),
            _ => Command::Invalid("usage: echo on|off"),
        },
        _ => Command::Invalid("unknown command (try help)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("  "), Command::Empty);
        assert_eq!(parse("help"), Command::Help);
        assert_eq!(parse("info "), Command::Info);
        assert_eq!(parse("embed  a cat  "), Command::Embed("a cat"));
        assert_eq!(parse("sim a cat|a dog"), Command::Sim("a cat", "a dog"));
        assert_eq!(parse("ask why?"), Command::Ask("why?"));
        assert_eq!(parse("bench"), Command::Bench(None));
        assert_eq!(parse("kcheck"), Command::KernelCheck(1));
        assert_eq!(parse("kcheck 77"), Command::KernelCheck(77));
        assert_eq!(parse("bench hi there"), Command::Bench(Some("hi there")));
        assert_eq!(parse("echo off"), Command::Echo(false));
        assert_eq!(parse("frame"), Command::Frame);
        assert_eq!(parse("chat  hi there "), Command::Chat("hi there"));
        assert_eq!(parse("chat reset"), Command::ChatReset);
        assert!(matches!(parse("chat"), Command::Invalid(_)));
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(matches!(parse("embed"), Command::Invalid(_)));
        assert!(matches!(parse("sim a cat"), Command::Invalid(_)));
        assert!(matches!(parse("sim | b"), Command::Invalid(_)));
        assert!(matches!(parse("echo maybe"), Command::Invalid(_)));
        assert!(matches!(parse("rm -rf /"), Command::Invalid(_)));
    }
}
