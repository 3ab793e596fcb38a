//! Wiring of the MPS2/MPS3 reference boards (QEMU only): SysTick and the CMSDK UART0 that the
//! board table names. Their src/bin files call [`main`].

use pith_boards::Console;

use crate::board::BOARD;
use crate::{clock, fatal, serve, uart, BAUD};

/// Brings up the CMSDK UART and serves the console.
pub fn main() -> ! {
    let Console::Cmsdk(u) = BOARD.console else {
        fatal("mps::main on a board without a CMSDK UART")
    };
    let Some(cp) = cortex_m::Peripherals::take() else {
        fatal("core peripherals taken twice")
    };
    let clock = clock::SysTickClock::start(cp.SYST, BOARD.cpu_hz);
    // SAFETY: the board table names this board's UART0, and nothing else in the firmware uses it.
    let mut port = unsafe { uart::Uart::new(u.base, u.irqs, BOARD.cpu_hz, BAUD) };
    serve(&mut port, clock)
}
