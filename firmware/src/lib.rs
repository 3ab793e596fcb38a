//! pith firmware: boots an MPS2/MPS3 board, validates the linked package once and serves the pith
//! console (runtime `console`) on UART0. Everything board-specific is in this crate; the console
//! itself is hardware-independent and tested on the host.
#![no_std]

pub mod board;
pub mod clock;
mod log;
pub mod memory;
pub mod package;
pub mod uart;

use pith_runtime::console::{Board as BoardInfo, Console, Service};
use pith_runtime::kb::Bank;
use pith_runtime::Model;

use crate::board::BOARD;

/// Console baud rate on real boards (QEMU ignores it).
const BAUD: u32 = 115_200;

/// The firmware's main: never returns.
pub fn run() -> ! {
    memory::paint_stack();
    let Some(cp) = cortex_m::Peripherals::take() else {
        fatal("core peripherals taken twice")
    };
    let clock = clock::SysTickClock::start(cp.SYST, BOARD.cpu_hz);
    // SAFETY: the board table names this board's UART0, and nothing else in the firmware uses it.
    let mut uart = unsafe { uart::Uart::new(BOARD.uart.base, BOARD.uart.irqs, BOARD.cpu_hz, BAUD) };
    let Some(arena) = package::take_arena() else {
        fatal("arena taken twice")
    };

    let bytes = package::bytes();
    defmt::info!(
        "pith on {=str}: package {=usize} bytes, arena {=usize} words",
        BOARD.name,
        bytes.len(),
        arena.len()
    );
    let model = Model::new(bytes);
    match &model {
        Ok(m) => defmt::info!(
            "model ok: dim {=usize}, max {=usize} tokens",
            m.dim(),
            m.max_tokens()
        ),
        Err(_) => defmt::warn!("no usable package: model commands will answer ERR 4"),
    }
    let info = BoardInfo {
        name: BOARD.name,
        cpu: BOARD.core,
        flash_used: memory::flash_used(),
        flash_size: memory::FLASH.len,
        ram_used: memory::ram_used(),
        ram_size: memory::RAM.len,
        stack_peak: Some(memory::stack_peak),
        package_bytes: bytes.len() as u32,
        arena_bytes: (arena.len() * 4) as u32,
    };
    // The bank must have been embedded by this very package (its model tag is the package CRC).
    let bank = match &model {
        Ok(m) if !package::bank().is_empty() => match Bank::for_model(package::bank(), m) {
            Ok(b) => {
                defmt::info!("knowledge bank: {=usize} entries", b.len());
                Some(b)
            }
            Err(_) => {
                defmt::warn!("knowledge bank refused (corrupt or built for another model)");
                None
            }
        },
        _ => None,
    };
    let mut service = Service::new(model, arena, info, clock);
    if let Some(b) = bank {
        service = service.with_bank(b);
    }
    defmt::info!(
        "max tokens within the arena: {=usize}",
        service.max_tokens()
    );
    let mut console = Console::new(service);
    // The UART's error type is Infallible: `serve` only returns if the port reports end of input.
    let _ = console.serve(&mut uart);
    fatal("console stopped")
}

/// Logs and leaves QEMU with a failure status (on a board: halts at a breakpoint).
pub fn fatal(why: &str) -> ! {
    defmt::error!("fatal: {=str}", why);
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Interrupts without a handler of their own. The UART RX interrupt only wakes `Uart::read` from
/// WFI: clearing it is all there is to do. Anything else is unexpected: mask it so it cannot storm.
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn >= 0 && BOARD.uart.irqs.contains(&(irqn as u16)) {
        uart::clear_rx_interrupt(BOARD.uart.base);
    } else if irqn >= 0 {
        cortex_m::peripheral::NVIC::mask(uart::Irq(irqn as u16));
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    fatal("panic")
}
