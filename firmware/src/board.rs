//! The boards, one selected by cargo feature. Memory maps live in build.rs (they feed the linker).

#[cfg(not(any(
    feature = "mps2-an385",
    feature = "mps2-an386",
    feature = "mps2-an500",
    feature = "mps2-an505",
    feature = "mps3-an547"
)))]
compile_error!(
    "select a board feature: mps2-an385, mps2-an386, mps2-an500, mps2-an505 or mps3-an547"
);

#[cfg(any(
    all(
        feature = "mps3-an547",
        any(
            feature = "mps2-an385",
            feature = "mps2-an386",
            feature = "mps2-an500",
            feature = "mps2-an505"
        )
    ),
    all(
        feature = "mps2-an505",
        any(feature = "mps2-an385", feature = "mps2-an386", feature = "mps2-an500")
    ),
    all(
        feature = "mps2-an500",
        any(feature = "mps2-an385", feature = "mps2-an386")
    ),
    all(feature = "mps2-an386", feature = "mps2-an385"),
))]
compile_error!(
    "select exactly one board feature (use --no-default-features for boards other than mps3-an547)"
);

/// What the firmware needs to know about a board beyond its memory map.
pub struct Board {
    /// QEMU machine name; also the binary's name.
    pub name: &'static str,
    /// Core.
    pub cpu: &'static str,
    /// CMSDK APB UART0 base address.
    pub uart_base: usize,
    /// UART0's RX and TX interrupt lines (QEMU releases disagree on their order on the SSE boards,
    /// so both are enabled as wake-up sources; only the RX interrupt is turned on in the UART).
    pub uart_irqs: [u16; 2],
    /// Core clock feeding SysTick and the UART.
    pub cpu_hz: u32,
}

#[cfg(any(feature = "mps2-an385", feature = "mps2-an386", feature = "mps2-an500"))]
const MPS2_UART: usize = 0x4000_4000;

/// The selected board.
#[cfg(feature = "mps2-an385")]
pub const BOARD: Board = Board {
    name: "mps2-an385",
    cpu: "Cortex-M3",
    uart_base: MPS2_UART,
    uart_irqs: [0, 1],
    cpu_hz: 25_000_000,
};
/// The selected board.
#[cfg(feature = "mps2-an386")]
pub const BOARD: Board = Board {
    name: "mps2-an386",
    cpu: "Cortex-M4F",
    uart_base: MPS2_UART,
    uart_irqs: [0, 1],
    cpu_hz: 25_000_000,
};
/// The selected board.
#[cfg(feature = "mps2-an500")]
pub const BOARD: Board = Board {
    name: "mps2-an500",
    cpu: "Cortex-M7",
    uart_base: MPS2_UART,
    uart_irqs: [0, 1],
    cpu_hz: 25_000_000,
};
/// The selected board.
#[cfg(feature = "mps2-an505")]
pub const BOARD: Board = Board {
    name: "mps2-an505",
    cpu: "Cortex-M33",
    uart_base: 0x5020_0000,
    uart_irqs: [32, 33],
    cpu_hz: 20_000_000,
};
/// The selected board.
#[cfg(feature = "mps3-an547")]
pub const BOARD: Board = Board {
    name: "mps3-an547",
    cpu: "Cortex-M55",
    uart_base: 0x5930_3000,
    uart_irqs: [33, 34],
    cpu_hz: 32_000_000,
};
