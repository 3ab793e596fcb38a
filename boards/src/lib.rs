//! The board table: every board pith supports, declared once. The firmware's build script writes
//! the linker memory map and selects the board from it, `pith console` and the tests build and boot
//! the firmware from it, and the size report names the parts from it.
//!
//! Adding a board: one entry in [`BOARDS`], one feature line in firmware/Cargo.toml (cargo cannot
//! generate features; firmware/build.rs checks the two agree) and its wiring file
//! firmware/src/bin/<name>.rs.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// One memory region: origin and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub origin: u32,
    /// Length in bytes.
    pub len: u32,
}

/// Where the firmware image and the model go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMap {
    /// Code and constants (vector table, .text, .rodata, the .data load image, the bank).
    pub flash: Region,
    /// Statics and the stack.
    pub ram: Region,
    /// The linked `.pith` package, read in place.
    pub package: Region,
    /// The arena the model runs in (scratch, not loaded).
    pub arena: Region,
}

/// The CMSDK APB UART0 of the MPS2/MPS3 FPGA images, driven by firmware/src/uart.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    /// Register block base address.
    pub base: usize,
    /// RX and TX interrupt lines. QEMU releases disagree on their order on the SSE boards, so both
    /// are enabled as wake-up sources; only the RX interrupt is turned on in the UART.
    pub irqs: [u16; 2],
}

/// Where the console is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// The CMSDK UART of an MPS2/MPS3 image (simulated reference boards).
    Cmsdk(Uart),
    /// A UART the wiring file drives through the part's HAL.
    Hal {
        /// The peripheral, e.g. "USART1".
        uart: &'static str,
        /// How to wire it, for people: pins and where they come out on the board.
        pins: &'static str,
    },
}

/// How a board is run and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The QEMU machine (`-machine`) that models it; `None`: built and size-checked only.
    pub qemu: Option<&'static str>,
    /// probe-rs `--chip` of the real part; `None`: a QEMU reference board with no real twin.
    pub probe_chip: Option<&'static str>,
    /// HAL crate the wiring file is built on (`None`: the firmware's own CMSDK driver).
    pub hal: Option<&'static str>,
}

/// A shipping part with the board's core, for turning instruction counts into time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Description, e.g. "Cortex-M4F, e.g. STM32F407".
    pub name: &'static str,
    /// Its top core clock in MHz.
    pub mhz: u32,
}

/// Everything pith knows about one board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// Board name: QEMU machine (`-machine`), firmware cargo feature and binary name.
    pub name: &'static str,
    /// Core, as the firmware reports it in `info`.
    pub core: &'static str,
    /// Rust target triple.
    pub target: &'static str,
    /// `-C target-cpu` for the build, where the target's baseline is not the core's.
    pub target_cpu: Option<&'static str>,
    /// Core clock feeding SysTick and the UART (the simulated board's, not the typical part's).
    pub cpu_hz: u32,
    /// The console's UART.
    pub console: Console,
    /// QEMU machine, flashing and HAL.
    pub run: Run,
    /// Linker memory map.
    pub memory: MemoryMap,
    /// The package linked when none is named, relative to the repository root (`pith` builds it).
    pub default_package: &'static str,
    /// The integer reasoner `chat` links when none is named (a package over the default
    /// package's vectors; `pith` builds it and its response bank), where the part has the room.
    pub default_reasoner: Option<&'static str>,
    /// The part itself (real boards) or a typical part with this core (reference boards).
    pub part: Part,
}

impl Board {
    /// Whether QEMU models this board (the tests boot it; otherwise it is build-only).
    pub const fn simulated(&self) -> bool {
        self.run.qemu.is_some()
    }

    /// Whether this is a real part (its image must fit the part's flash and RAM).
    pub const fn real_part(&self) -> bool {
        self.run.probe_chip.is_some()
    }
}

const K: u32 = 1024;
const M: u32 = 1024 * 1024;

const fn region(origin: u32, len: u32) -> Region {
    Region { origin, len }
}

/// The MPS2 FPGA images' UART0.
const MPS2_UART: Uart = Uart {
    base: 0x4000_4000,
    irqs: [0, 1],
};

/// MPS2 (AN385/386): SSRAM1 4M at 0 holds code; SSRAM2/3 4M at 0x2000_0000 hold statics (1M) and
/// the arena (3M); the 16M PSRAM at 0x2100_0000 holds the package.
const MPS2_MAP: MemoryMap = MemoryMap {
    flash: region(0x0000_0000, 4 * M),
    ram: region(0x2000_0000, M),
    arena: region(0x2010_0000, 3 * M),
    package: region(0x2100_0000, 16 * M),
};

/// A reference board only QEMU has: the machine is the board's name, no HAL, no probe.
const fn qemu_only(machine: &'static str) -> Run {
    Run {
        qemu: Some(machine),
        probe_chip: None,
        hal: None,
    }
}

/// The packages the table links, relative to the repository root: the one place their paths are
/// written (the tools' recipes build each of them, tools/src/artifacts.rs).
pub mod packages {
    /// The full MiniLM (all-MiniLM-L6-v2 int8, the default model; needs mps3-an547's 64M DDR).
    pub const MINILM: &str = "models/minilm-l6.pith";
    /// The MiniLM with a 12k-token vocabulary: fits the mps2 boards' 16M PSRAM.
    pub const MINILM_12K: &str = "models/minilm-l6-12k.pith";
    /// Tier S: the static model for 1 MB parts (523,860 bytes).
    pub const TIER_S: &str = "models/tier-s.pith";
    /// Tier M: the distilled 4-layer student for 2-4 MB parts (1,997,028 bytes).
    pub const TIER_M: &str = "models/tier-m.pith";
    /// The reasoner over the MiniLM's vectors.
    pub const REASONER_L6: &str = "models/reasoner-l6.pith";
    /// The reasoner over Tier M's vectors.
    pub const REASONER_M: &str = "models/reasoner-m.pith";
    /// The reasoner over Tier S's vectors.
    pub const REASONER_S: &str = "models/reasoner-s.pith";
}
use packages::{MINILM, MINILM_12K, REASONER_L6, REASONER_M, TIER_M, TIER_S};

/// Every board; the first is the default (`pith console --sim`, firmware/.cargo/config.toml).
pub const BOARDS: &[Board] = &[
    Board {
        name: "mps3-an547",
        core: "Cortex-M55",
        target: "thumbv8m.main-none-eabihf",
        target_cpu: Some("cortex-m55"),
        cpu_hz: 32_000_000,
        console: Console::Cmsdk(Uart {
            base: 0x5930_3000,
            irqs: [33, 34],
        }),
        run: qemu_only("mps3-an547"),
        // ITCM 512K at 0 holds code; SRAM 4M at 0x2100_0000 statics; DDR at 0x6000_0000 holds the
        // package (up to 64M) and a 16M arena.
        memory: MemoryMap {
            flash: region(0x0000_0000, 512 * K),
            ram: region(0x2100_0000, 4 * M),
            package: region(0x6000_0000, 64 * M),
            arena: region(0x6400_0000, 16 * M),
        },
        default_package: MINILM,
        default_reasoner: Some(REASONER_L6),
        part: Part {
            name: "Cortex-M55, e.g. Alif Ensemble E7 HP",
            mhz: 400,
        },
    },
    Board {
        name: "mps2-an505",
        core: "Cortex-M33",
        target: "thumbv8m.main-none-eabihf",
        target_cpu: Some("cortex-m33"),
        cpu_hz: 20_000_000,
        console: Console::Cmsdk(Uart {
            base: 0x5020_0000,
            irqs: [32, 33],
        }),
        run: qemu_only("mps2-an505"),
        // Boots secure from 0x1000_0000; SSRAM2+3 (secure alias 0x3800_0000) are 4M together;
        // PSRAM 16M at 0x8000_0000.
        memory: MemoryMap {
            flash: region(0x1000_0000, 4 * M),
            ram: region(0x3800_0000, M),
            arena: region(0x3810_0000, 3 * M),
            package: region(0x8000_0000, 16 * M),
        },
        default_package: MINILM_12K,
        default_reasoner: None,
        part: Part {
            name: "Cortex-M33, e.g. STM32U585",
            mhz: 160,
        },
    },
    Board {
        name: "mps2-an500",
        core: "Cortex-M7",
        target: "thumbv7em-none-eabihf",
        target_cpu: None,
        cpu_hz: 25_000_000,
        console: Console::Cmsdk(MPS2_UART),
        run: qemu_only("mps2-an500"),
        // As the other MPS2 images, but its 16M PSRAM sits at 0x6000_0000 (a package linked at
        // 0x2100_0000 reads back corrupted there).
        memory: MemoryMap {
            package: region(0x6000_0000, 16 * M),
            ..MPS2_MAP
        },
        default_package: MINILM_12K,
        default_reasoner: None,
        part: Part {
            name: "Cortex-M7, e.g. STM32H743",
            mhz: 480,
        },
    },
    Board {
        name: "mps2-an386",
        core: "Cortex-M4F",
        target: "thumbv7em-none-eabihf",
        target_cpu: None,
        cpu_hz: 25_000_000,
        console: Console::Cmsdk(MPS2_UART),
        run: qemu_only("mps2-an386"),
        memory: MPS2_MAP,
        default_package: MINILM_12K,
        default_reasoner: None,
        part: Part {
            name: "Cortex-M4F, e.g. STM32F407",
            mhz: 168,
        },
    },
    Board {
        name: "mps2-an385",
        core: "Cortex-M3",
        // Built for ARMv6-M so the image stands for the M0+ class of part (no DSP, no wide multiply).
        target: "thumbv6m-none-eabi",
        target_cpu: None,
        cpu_hz: 25_000_000,
        console: Console::Cmsdk(MPS2_UART),
        run: qemu_only("mps2-an385"),
        memory: MPS2_MAP,
        default_package: MINILM_12K,
        default_reasoner: None,
        part: Part {
            name: "M0+ class, e.g. RP2040",
            mhz: 133,
        },
    },
    // Real parts: the package lives in the part's own flash, after the code; RAM holds statics,
    // stack and the arena. The QEMU-modelled STM32F405 is tested end to end, the rest build,
    // link within the part and get a size check.
    Board {
        name: "stm32f405",
        core: "Cortex-M4F",
        target: "thumbv7em-none-eabihf",
        target_cpu: None,
        // HSI: QEMU models no PLL (RCC ready bits never come); the hardware build runs the PLL and
        // reads its clock from the HAL.
        cpu_hz: 16_000_000,
        console: Console::Hal {
            uart: "USART1",
            pins: "PA9 = TX, PA10 = RX (AF7), 3.3 V levels",
        },
        run: Run {
            qemu: Some("netduinoplus2"),
            probe_chip: Some("STM32F405RGTx"),
            hal: Some("stm32f4xx-hal 0.23"),
        },
        // Flash sectors 0-5 (384K) hold code and the bank, 6-11 (640K) the package; SRAM1+2
        // (128K, all QEMU 7.2 maps there) statics + stack, then the arena.
        memory: MemoryMap {
            flash: region(0x0800_0000, 384 * K),
            package: region(0x0806_0000, 640 * K),
            ram: region(0x2000_0000, 96 * K),
            arena: region(0x2001_8000, 32 * K),
        },
        default_package: TIER_S,
        default_reasoner: None,
        part: Part {
            name: "STM32F405RG (Netduino Plus 2, Feather STM32F405, Olimex H405)",
            mhz: 168,
        },
    },
    Board {
        name: "pico2",
        core: "Cortex-M33",
        target: "thumbv8m.main-none-eabihf",
        target_cpu: Some("cortex-m33"),
        cpu_hz: 150_000_000,
        console: Console::Hal {
            uart: "UART0",
            pins: "GP0 = TX (pin 1), GP1 = RX (pin 2), GND pin 3",
        },
        run: Run {
            qemu: None,
            probe_chip: Some("RP235x"),
            hal: Some("rp235x-hal 0.4"),
        },
        // 4 MiB QSPI flash (XIP): 512K code and bank, 3.5M package, reasoner and response bank
        // (Tier M 1.9M + reasoner 0.46M + bank with its lexicon 0.95M); 512K striped SRAM.
        memory: MemoryMap {
            flash: region(0x1000_0000, 512 * K),
            package: region(0x1008_0000, 3 * M + 512 * K),
            ram: region(0x2000_0000, 128 * K),
            arena: region(0x2002_0000, 384 * K),
        },
        default_package: TIER_M,
        default_reasoner: Some(REASONER_M),
        part: Part {
            name: "RP2350 (Raspberry Pi Pico 2)",
            mhz: 150,
        },
    },
    Board {
        name: "nucleo-h743zi2",
        core: "Cortex-M7",
        target: "thumbv7em-none-eabihf",
        target_cpu: None,
        cpu_hz: 64_000_000,
        console: Console::Hal {
            uart: "USART3",
            pins: "PD8 = TX, PD9 = RX: wired to the ST-LINK virtual COM port (USB)",
        },
        run: Run {
            qemu: None,
            probe_chip: Some("STM32H743ZITx"),
            hal: Some("stm32h7xx-hal 0.16"),
        },
        // 2M flash: 512K code and bank, 1.5M package (Tier M's 1.93M would leave 150K for code
        // and no bank); AXI SRAM 512K.
        memory: MemoryMap {
            flash: region(0x0800_0000, 512 * K),
            package: region(0x0808_0000, 1536 * K),
            ram: region(0x2400_0000, 256 * K),
            arena: region(0x2404_0000, 256 * K),
        },
        default_package: TIER_S,
        default_reasoner: None,
        part: Part {
            name: "STM32H743ZI (Nucleo-H743ZI2)",
            mhz: 480,
        },
    },
    Board {
        name: "nrf52840-dk",
        core: "Cortex-M4F",
        target: "thumbv7em-none-eabihf",
        target_cpu: None,
        cpu_hz: 64_000_000,
        console: Console::Hal {
            uart: "UARTE0",
            pins: "P0.06 = TX, P0.08 = RX: wired to the J-Link virtual COM port (USB)",
        },
        run: Run {
            qemu: None,
            probe_chip: Some("nRF52840_xxAA"),
            hal: Some("nrf52840-hal 0.19"),
        },
        memory: MemoryMap {
            flash: region(0x0000_0000, 384 * K),
            package: region(0x0006_0000, 640 * K),
            ram: region(0x2000_0000, 192 * K),
            arena: region(0x2003_0000, 64 * K),
        },
        default_package: TIER_S,
        default_reasoner: None,
        part: Part {
            name: "nRF52840 (nRF52840 DK)",
            mhz: 64,
        },
    },
];

/// The default board (the first in [`BOARDS`]).
pub const DEFAULT: &Board = &BOARDS[0];

/// The board called `name`.
pub fn find(name: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.name == name)
}

/// Every board's name, in table order (for error messages and help text).
pub fn names() -> impl Iterator<Item = &'static str> {
    BOARDS.iter().map(|b| b.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: Region, b: Region) -> bool {
        let (a0, a1) = (a.origin as u64, a.origin as u64 + a.len as u64);
        let (b0, b1) = (b.origin as u64, b.origin as u64 + b.len as u64);
        a0 < b1 && b0 < a1
    }

    #[test]
    fn names_are_unique_and_regions_do_not_overlap() {
        for (i, b) in BOARDS.iter().enumerate() {
            assert!(
                BOARDS[..i].iter().all(|o| o.name != b.name),
                "{} twice",
                b.name
            );
            let m = b.memory;
            let regions = [m.flash, m.ram, m.package, m.arena];
            for (j, r) in regions.iter().enumerate() {
                assert!(r.len > 0 && r.len % 64 == 0, "{}: region {j} size", b.name);
                assert!(
                    r.origin as u64 + r.len as u64 <= 1 << 32,
                    "{}: region {j} wraps",
                    b.name
                );
                for (k, o) in regions.iter().enumerate().skip(j + 1) {
                    assert!(!overlaps(*r, *o), "{}: regions {j} and {k} overlap", b.name);
                }
            }
            assert!(b.target.starts_with("thumbv"), "{}: {}", b.name, b.target);
            // The firmware drives CMSDK UARTs itself; real parts go through their HAL.
            assert_eq!(
                matches!(b.console, Console::Hal { .. }),
                b.run.hal.is_some(),
                "{}: console and HAL disagree",
                b.name
            );
        }
        assert_eq!(find("mps2-an386").map(|b| b.core), Some("Cortex-M4F"));
        assert_eq!(find("no-such-board"), None);
    }
}
