//! Selects the board (the one board feature enabled) from the board table (`pith-boards`), checks
//! that the features, the binaries and the build's target agree with the table, writes `memory.x`
//! (for cortex-m-rt), `pith.x` (the package and arena sections) and the board constants, and links
//! the model package named by `PITH_PACKAGE` (none when unset). `PITH_ARENA_BYTES` shrinks the
//! arena below the board's (to model a smaller part).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use pith_boards::{Board, MemoryMap, Region, BOARDS};

/// Features in firmware/Cargo.toml that are not boards.
const OTHER_FEATURES: &[&str] = &["qemu"];

fn feature_var(board: &str) -> String {
    format!("CARGO_FEATURE_{}", board.to_uppercase().replace('-', "_"))
}

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    check_table_wiring(&manifest);
    let chosen: Vec<(usize, &Board)> = BOARDS
        .iter()
        .enumerate()
        .filter(|(_, b)| env::var_os(feature_var(b.name)).is_some())
        .collect();
    let names: Vec<&str> = BOARDS.iter().map(|b| b.name).collect();
    let (index, board) = match chosen.as_slice() {
        [one] => *one,
        [] => fail(&format!(
            "select a board feature: one of {}",
            names.join(", ")
        )),
        many => fail(&format!(
            "select exactly one board feature (got {}); use --no-default-features for boards other than {}",
            many.iter().map(|(_, b)| b.name).collect::<Vec<_>>().join(", "),
            BOARDS[0].name
        )),
    };
    check_target(board);
    let semihosting = transport(board);
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut map = board.memory;
    // A smaller arena models a part with less RAM (Tier M: 128 KB in all on an M4 part); the
    // console then reports how many tokens fit in it.
    println!("cargo:rerun-if-env-changed=PITH_ARENA_BYTES");
    if let Some(v) = env::var("PITH_ARENA_BYTES").ok().filter(|v| !v.is_empty()) {
        let Ok(bytes) = v.parse::<u32>() else {
            fail(&format!("PITH_ARENA_BYTES={v}: not a byte count"))
        };
        if bytes < 1024 || bytes > map.arena.len {
            fail(&format!(
                "PITH_ARENA_BYTES={bytes}: must be between 1024 and {}'s {} bytes",
                board.name, map.arena.len
            ));
        }
        map.arena.len = bytes.next_multiple_of(64);
    }
    write_memory_x(&out, &map);
    write_consts(&out, index, &map, semihosting);
    write_package(&out);
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=--nmagic");
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rustc-link-arg=-Tdefmt.x");
    println!("cargo:rustc-link-arg=-Tpith.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=src/bin");
}

/// Stops the build with `why` (cargo shows the panic message as the build script's error).
fn fail(why: &str) -> ! {
    panic!("\n\nfirmware: {why}\n\n")
}

/// Every board in the table has a feature in Cargo.toml and a wiring file src/bin/<board>.rs, and
/// nothing else does: the table is the one list of boards.
fn check_table_wiring(manifest: &Path) {
    let toml = fs::read_to_string(manifest.join("Cargo.toml"))
        .unwrap_or_else(|e| fail(&format!("reading Cargo.toml: {e}")));
    let mut features = Vec::new();
    let mut default = String::new();
    let mut in_features = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_features = line == "[features]";
        } else if in_features && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim();
                if name == "default" {
                    default = line.to_string();
                } else {
                    features.push(name.to_string());
                }
            }
        }
    }
    let bins: Vec<String> = fs::read_dir(manifest.join("src/bin"))
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".rs").map(str::to_string)
            })
            .collect()
        })
        .unwrap_or_default();
    for b in BOARDS {
        if !features.iter().any(|f| f == b.name) {
            fail(&format!(
                "board {} (boards/src/lib.rs) has no feature in firmware/Cargo.toml: add `{} = []`",
                b.name, b.name
            ));
        }
        if !bins.iter().any(|f| f == b.name) {
            fail(&format!(
                "board {} (boards/src/lib.rs) has no wiring file firmware/src/bin/{}.rs",
                b.name, b.name
            ));
        }
    }
    let want = format!("default = [\"{}\"]", BOARDS[0].name);
    if default.replace(' ', "") != want.replace(' ', "") {
        fail(&format!(
            "firmware/Cargo.toml's default feature must be the table's first board: `{want}`"
        ));
    }
    for f in &features {
        if !BOARDS.iter().any(|b| b.name == f) && !OTHER_FEATURES.contains(&f.as_str()) {
            fail(&format!(
                "feature {f} in firmware/Cargo.toml is not a board in boards/src/lib.rs"
            ));
        }
    }
    for f in &bins {
        if !BOARDS.iter().any(|b| b.name == f) {
            fail(&format!(
                "firmware/src/bin/{f}.rs is not a board in boards/src/lib.rs"
            ));
        }
    }
}

/// The build's target and `-C target-cpu` must be the table's: a wrong CPU builds, boots, and dies
/// on the first instruction the core lacks.
fn check_target(board: &Board) {
    let target = env::var("TARGET").unwrap_or_default();
    if target != board.target {
        fail(&format!(
            "{} builds for {}, not {target}: add --target {} (or use `pith firmware --board {}`)",
            board.name, board.target, board.target, board.name
        ));
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut cpu = None;
    let mut args = flags.split('\x1f');
    while let Some(a) = args.next() {
        let opt = if a == "-C" {
            args.next().unwrap_or("")
        } else {
            a.strip_prefix("-C").unwrap_or("")
        };
        if let Some(c) = opt.strip_prefix("target-cpu=") {
            cpu = Some(c.to_string());
        }
    }
    if cpu.as_deref() != board.target_cpu {
        fail(&format!(
            "{} needs -C target-cpu={} but the build has {}; `pith firmware --board {}` sets it",
            board.name,
            board.target_cpu.unwrap_or("<none>"),
            cpu.as_deref().unwrap_or("none"),
            board.name
        ));
    }
}

/// Logging and exit by transport: semihosting when the image runs in QEMU (a reference board, or
/// a real board built with the `qemu` feature), RTT and panic-probe on hardware. Returns whether
/// the image runs in QEMU.
fn transport(board: &Board) -> bool {
    println!("cargo::rustc-check-cfg=cfg(pith_semihosting)");
    let qemu_feature = env::var_os("CARGO_FEATURE_QEMU").is_some();
    if qemu_feature && !board.simulated() {
        fail(&format!(
            "{} has no QEMU machine (boards/src/lib.rs): build it without the qemu feature",
            board.name
        ));
    }
    let in_qemu = qemu_feature || !board.real_part();
    if in_qemu {
        println!("cargo:rustc-cfg=pith_semihosting");
    }
    in_qemu
}

fn write_memory_x(out: &Path, m: &MemoryMap) {
    let region = |name: &str, r: Region| {
        format!(
            "  {name:7} : ORIGIN = 0x{:08x}, LENGTH = 0x{:08x}\n",
            r.origin, r.len
        )
    };
    let mut s = String::from("/* generated by build.rs from the board table */\nMEMORY\n{\n");
    s += &region("FLASH", m.flash);
    s += &region("RAM", m.ram);
    s += &region("PACKAGE", m.package);
    s += &region("ARENA", m.arena);
    s += "}\n";
    // Here rather than in pith.x: link.x includes memory.x first, and `_stext` must be set
    // before link.x places .text (its own value is only PROVIDEd).
    s += "
/* The RP2350 boot ROM looks for an image definition block in the first 4K of flash (the
   wiring file's IMAGE_DEF); the section is empty on other parts. */
SECTIONS
{
  .start_block : ALIGN(4)
  {
    KEEP(*(.start_block));
  } > FLASH
} INSERT AFTER .vector_table;
_stext = ADDR(.start_block) + SIZEOF(.start_block);
";
    fs::write(out.join("memory.x"), s).expect("write memory.x");
    // The package stays in place (read-only, loaded by QEMU's ELF loader or the board's flasher);
    // the arena is scratch that the firmware zeroes at boot, so it takes no room in the image.
    let pith = "/* generated by build.rs */
SECTIONS
{
  .pith_package : ALIGN(64)
  {
    KEEP(*(.pith_package .pith_package.*));
  } > PACKAGE
  .pith_arena (NOLOAD) : ALIGN(64)
  {
    *(.pith_arena .pith_arena.*);
  } > ARENA
} INSERT AFTER .rodata;

/* Not loaded: tells firmware/run.sh how to run the image (QEMU machine or probe-rs chip). */
SECTIONS
{
  .pith_runner (INFO) :
  {
    KEEP(*(.pith_runner));
  }
}
";
    fs::write(out.join("pith.x"), pith).expect("write pith.x");
}

fn write_consts(out: &Path, index: usize, m: &MemoryMap, in_qemu: bool) {
    let board = &BOARDS[index];
    let runner = match (in_qemu, board.run.qemu, board.run.probe_chip) {
        (true, Some(machine), _) => format!("qemu:{machine}"),
        (false, _, Some(chip)) => format!("probe-rs:{chip}"),
        _ => fail(&format!(
            "{}: neither a QEMU machine nor a probe chip",
            board.name
        )),
    };
    let marker = format!("pith-runner={runner};");
    let mut s = format!(
        "/// How firmware/run.sh runs this image (section .pith_runner, not loaded).\n\
         #[link_section = \".pith_runner\"]\n#[used]\n\
         static RUNNER: [u8; {}] = *b{marker:?};\n",
        marker.len()
    );
    s += &format!(
        "/// The selected board's entry in the table.\npub const BOARD: pith_boards::Board = pith_boards::BOARDS[{index}];\n\
         /// Arena bytes (the board's, or fewer with PITH_ARENA_BYTES).\npub const ARENA_BYTES: usize = 0x{:08x};\n",
        m.arena.len
    );
    fs::write(out.join("board.rs"), s).expect("write board.rs");
}

/// `pub static NAME: Aligned<[u8; N]>` holding the file `$var` names (empty when unset), in the
/// package region beside the encoder: a reasoner and its response bank are model data of megabytes
/// (the teacher's reasoner is 3 MB), more than the code memory of a board such as mps3-an547
/// (512 KiB of ITCM) holds.
fn model_data(var: &str, name: &str, what: &str) -> String {
    println!("cargo:rerun-if-env-changed={var}");
    match env::var(var).ok().filter(|p| !p.is_empty()) {
        Some(path) => {
            let path =
                fs::canonicalize(&path).unwrap_or_else(|e| fail(&format!("{var}={path}: {e}")));
            println!("cargo:rerun-if-changed={}", path.display());
            let len = fs::metadata(&path)
                .unwrap_or_else(|e| fail(&format!("{var}={}: {e}", path.display())))
                .len();
            format!(
                "/// {what} ({len} bytes from {p}).\n#[link_section = \".pith_package.{lower}\"]\n#[used]\n\
                 pub static {name}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({p:?}));\n",
                p = path.display().to_string(),
                lower = name.to_lowercase()
            )
        }
        None => format!(
            "/// No {what} linked ({var} was unset at build time).\npub static {name}: Aligned<[u8; 0]> = Aligned([]);\n"
        ),
    }
}

fn write_package(out: &Path) {
    println!("cargo:rerun-if-env-changed=PITH_PACKAGE");
    let body = match env::var("PITH_PACKAGE").ok().filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = fs::canonicalize(&path)
                .unwrap_or_else(|e| fail(&format!("PITH_PACKAGE={path}: {e}")));
            println!("cargo:rerun-if-changed={}", path.display());
            let len = fs::metadata(&path).expect("stat package").len();
            format!(
                "/// The linked package ({len} bytes from {p}).\n\
                 #[link_section = \".pith_package\"]\n#[used]\n\
                 pub static PACKAGE: Aligned<[u8; {len}]> = Aligned(*include_bytes!({p:?}));\n",
                p = path.display().to_string()
            )
        }
        None => {
            println!("cargo:warning=PITH_PACKAGE is not set: no model is linked (model commands answer ERR 4)");
            "/// No package linked (PITH_PACKAGE was unset at build time).\n\
             pub static PACKAGE: Aligned<[u8; 0]> = Aligned([]);\n"
                .to_string()
        }
    };
    // The knowledge bank (`pith kb build`) goes to ordinary flash (.rodata): about 90 KB.
    println!("cargo:rerun-if-env-changed=PITH_BANK");
    let bank = match env::var("PITH_BANK").ok().filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = fs::canonicalize(&path)
                .unwrap_or_else(|e| fail(&format!("PITH_BANK={path}: {e}")));
            println!("cargo:rerun-if-changed={}", path.display());
            format!(
                "/// The linked knowledge bank.\npub static BANK: &[u8] = include_bytes!({p:?});\n",
                p = path.display().to_string()
            )
        }
        None => "/// No knowledge bank linked (PITH_BANK was unset at build time).\npub static BANK: &[u8] = &[];\n".to_string(),
    };
    // The reasoner and its response bank for `chat`, beside the package.
    let reasoner = model_data("PITH_REASONER", "REASONER", "the integer reasoner package");
    let chat_bank = model_data("PITH_CHAT_BANK", "CHAT_BANK", "the response bank of chat");
    let s = format!(
        "/// 64-byte alignment, so the package's own 16-byte section alignment holds in memory.\n\
                     #[repr(C, align(64))]\npub struct Aligned<T: ?Sized>(pub T);\n\n{body}\n{bank}\n{reasoner}\n{chat_bank}"
    );
    fs::write(out.join("package.rs"), s).expect("write package.rs");
}
