//! `pith`: turn a sentence-transformers checkpoint into an int8 `.pith` package and use it.

use clap::{Parser, Subcommand};
use pith_tools::cmd;

#[derive(Parser)]
#[command(
    name = "pith",
    version,
    about = "Sentence embeddings for microcontrollers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Export a checkpoint to an fp32 ONNX graph (input_ids, attention_mask -> sentence_embedding).
    Export(cmd::export::Args),
    /// Calibrate and quantize a checkpoint into a .pith package (and optionally a QDQ ONNX).
    Quantize(cmd::quantize::Args),
    /// Distill a small student of a teacher checkpoint (Tier S: static, <= 512 KiB; Tier M: a
    /// small BERT, <= 2 MB, resumable), with its bank, model card and training record.
    Distill(cmd::distill::Args),
    /// Embed one text and print the vector.
    Embed(cmd::embed::Args),
    /// Cosine similarity of two texts.
    Sim(cmd::sim::Args),
    /// Evaluate on a benchmark (sts, faq).
    Eval(cmd::eval::Args),
    /// Time native int8 against tract fp32 and tract int8 on the same sentences.
    Bench(cmd::bench::Args),
    /// Build or inspect a knowledge bank.
    Kb(cmd::kb::Args),
    /// Answer a question from a knowledge bank.
    Ask(cmd::ask::Args),
    /// Talk to the reasoner: it answers each turn with the nearest sentence of a response bank.
    Chat(cmd::chat::Args),
    /// Attach to the firmware's serial console (QEMU simulator or a real board).
    Console(cmd::console::Args),
    /// List the boards: part, core, memory, default model, simulated or build-only.
    Boards(cmd::boards::Args),
    /// Build the firmware for a board and print the ELF's path.
    Firmware(cmd::firmware::Args),
    /// Build the default artifacts (packages, ONNX exports, banks) that the boards and tests use.
    Artifacts(cmd::artifacts::Args),
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader went away (`pith kb info X --entries | head -1`): nothing left to say.
        Err(e) if pith_tools::stdout::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Export(a) => cmd::export::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Distill(a) => cmd::distill::run(a),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Kb(a) => cmd::kb::run(a),
        Command::Ask(a) => cmd::ask::run(a),
        Command::Chat(a) => cmd::chat::run(a),
        Command::Console(a) => cmd::console::run(a),
        Command::Boards(a) => cmd::boards::run(a),
        Command::Firmware(a) => cmd::firmware::run(a),
        Command::Artifacts(a) => cmd::artifacts::run(a),
    }
}
