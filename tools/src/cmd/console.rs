//! `pith console`: attach to the firmware's serial console, in QEMU (`--sim`) or on a real board
//! (`--port`, through the `serialport` crate). With a terminal on stdin it is interactive (the
//! terminal in raw mode through `crossterm`); otherwise each stdin line is sent as a command, its
//! reply (up to the `OK`/`ERR` line) is printed, and the tool exits at end of input: non-zero when
//! any line answered ERR, was refused, or got no reply.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::device::console_line::{plan, Plan};
use crate::device::firmware;
use crate::device::{self, Link, Qemu};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Boot the firmware in QEMU (qemu-system-arm) and attach to its UART.
    #[arg(long, conflicts_with = "port")]
    sim: bool,
    /// Board to simulate (`pith boards` lists them; default: the table's first).
    #[arg(long, default_value = pith_boards::DEFAULT.name)]
    board: String,
    /// Firmware ELF to boot (default: build firmware/ for the board; PITH_PACKAGE picks the model).
    #[arg(long)]
    elf: Option<PathBuf>,
    /// Serial device of a real board, e.g. /dev/ttyACM0 or COM3.
    #[arg(long)]
    port: Option<PathBuf>,
    /// Baud rate for --port.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Seconds to wait for each reply when commands come from a pipe.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scripted = !std::io::stdin().is_terminal();
    let timeout = Duration::from_secs(args.timeout);
    if let Some(port) = &args.port {
        return real_board(port, args.baud, scripted, timeout);
    }
    if !args.sim {
        bail!("say where the console is: --sim (QEMU) or --port DEVICE");
    }
    let board = firmware::board(&args.board)?;
    if !board.simulated() {
        bail!(
            "{} has no QEMU machine: flash it (README, \"flash your board\") and use --port",
            board.name
        );
    }
    let elf = match &args.elf {
        Some(e) => {
            // An ELF that is missing, empty, not an ELF or linked for another board's memory
            // would boot into silence: refuse it before QEMU starts.
            crate::device::image::measure(board, e)
                .with_context(|| format!("--elf {} cannot run on {}", e.display(), board.name))?;
            e.clone()
        }
        None => {
            eprintln!("pith console: building the firmware for {} ...", board.name);
            let link = firmware::Link {
                qemu: true,
                ..crate::cmd::firmware::link_from_env(board)?
            };
            firmware::build(board, &link)?
        }
    };
    let defmt_log = elf.with_extension("defmt");
    if !scripted {
        let log = std::fs::File::create(&defmt_log)
            .with_context(|| format!("creating {}", defmt_log.display()))?;
        eprintln!(
            "pith console: {} in QEMU, defmt log {}; Ctrl-C quits",
            board.name,
            defmt_log.display()
        );
        let status = device::qemu_command(board, &elf, false)?
            .stderr(log)
            .status()
            .context("starting qemu-system-arm (apt-get install qemu-system-arm)")?;
        if !status.success() && !quit_by_user(status) {
            bail!(
                "the simulated {} stopped: qemu exited with {status}; see {}",
                board.name,
                defmt_log.display()
            );
        }
        return Ok(());
    }
    let mut qemu = Qemu::boot_logging(board, &elf, false, defmt_log, true)?;
    let tally = script(&mut qemu, timeout).map_err(|e| qemu.explain(e, board.name))?;
    tally.verdict()
}

/// Whether QEMU ended because the person at the terminal quit it (Ctrl-C: SIGINT, or a shell's
/// 130).
fn quit_by_user(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(2) || status.code() == Some(130)
}

/// How a script went: commands sent (or refused) and how many of them failed.
struct Tally {
    commands: usize,
    failures: usize,
}

impl Tally {
    /// An error when any command failed.
    fn verdict(&self) -> Result<()> {
        if self.failures > 0 {
            bail!(
                "{} of {} command(s) answered ERR, were refused or got no reply",
                self.failures,
                self.commands
            );
        }
        Ok(())
    }
}

/// Sends each stdin line as a command and prints the replies, one status line per input line
/// that is not blank. An error is the link failing (the device stopped or went away); failed
/// commands are counted in the tally.
fn script(link: &mut Link, timeout: Duration) -> Result<Tally> {
    link.echo_off(timeout)?;
    let (mut failures, mut commands) = (0usize, 0usize);
    for (n, line) in std::io::stdin().lock().split(b'\n').enumerate() {
        let line = line.context("reading stdin")?;
        let bytes = match plan(&line) {
            Plan::Skip => continue,
            Plan::Refuse(why) => {
                commands += 1;
                failures += 1;
                crate::outln!("ERR 1 {why}");
                continue;
            }
            Plan::Send(bytes) => bytes,
        };
        commands += 1;
        match link.command_bytes(&bytes, timeout) {
            Ok(reply) => {
                for l in &reply.body {
                    crate::outln!("{l}");
                }
                crate::outln!("{}", reply.status);
                if !reply.ok() {
                    failures += 1;
                }
            }
            Err(e) => {
                failures += 1;
                crate::outln!(
                    "ERR timeout: no reply to line {} within {} s",
                    n + 1,
                    timeout.as_secs()
                );
                eprintln!("pith console: line {}: {e:#}", n + 1);
                link.resync(timeout)
                    .context("the device stopped answering")?;
            }
        }
    }
    Ok(Tally { commands, failures })
}

/// A real board on a serial device: 8N1 at `baud`, no flow control (the boards' consoles have none).
fn real_board(port: &Path, baud: u32, scripted: bool, timeout: Duration) -> Result<()> {
    let name = port.to_string_lossy();
    let dev = serialport::new(name.as_ref(), baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        // Reads wake up this often to notice a closed link; Link's reader keeps listening.
        .timeout(Duration::from_millis(200))
        .open()
        .with_context(|| format!("opening {name} at {baud} baud"))?;
    let writer = dev
        .try_clone()
        .with_context(|| format!("cloning the handle of {name}"))?;
    if scripted {
        return script(&mut Link::new(dev, writer), timeout)
            .with_context(|| format!("the board on {name} stopped answering or went away"))?
            .verdict();
    }
    interactive(dev, writer)
}

/// Puts the terminal back in its normal mode when dropped (also on an error path).
struct RawMode;

impl RawMode {
    fn on() -> Result<RawMode> {
        crossterm::terminal::enable_raw_mode().context("putting the terminal in raw mode")?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Copies the terminal to the device and back, the terminal in raw mode; Ctrl-] quits.
fn interactive(
    mut from_dev: Box<dyn serialport::SerialPort>,
    mut to_dev: Box<dyn serialport::SerialPort>,
) -> Result<()> {
    let raw = RawMode::on()?;
    eprint!("pith console: connected; Ctrl-] quits\r\n");
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut out = std::io::stdout();
        loop {
            match from_dev.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
    });
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    let result = loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e.into()),
        };
        if let Some(i) = buf[..n].iter().position(|&b| b == 0x1d) {
            break to_dev.write_all(&buf[..i]).map_err(Into::into);
        }
        if let Err(e) = to_dev.write_all(&buf[..n]) {
            break Err(e.into());
        }
    };
    drop(raw);
    eprintln!();
    result
}
