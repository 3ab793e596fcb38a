//! pith firmware: validates the linked package once and serves the pith console (runtime
//! `console`) on a UART. Each board's wiring file (src/bin/<board>.rs) brings up its clocks and
//! console UART and calls [`serve`]; the console itself is hardware-independent and tested on the
//! host.
//!
//! Logging and exit go by transport: QEMU builds (the reference boards, or a real board's image
//! built with the `qemu` feature) log defmt over semihosting and exit through it; hardware builds
//! log defmt over RTT and panic through panic-probe, so a board with no debugger attached boots
//! and answers on its UART (semihosting would trap there).
#![no_std]

pub mod board;
pub mod clock;
#[cfg(pith_semihosting)]
mod log;
pub mod memory;
pub mod mps;
pub mod package;
pub mod port;
pub mod uart;

#[cfg(not(pith_semihosting))]
use defmt_rtt as _;
#[cfg(not(pith_semihosting))]
use panic_probe as _;

use embedded_io::{Read, Write};
use pith_console::chat::{self, Chat};
use pith_console::{Board as BoardInfo, Console, Service};
use pith_runtime::kb::Bank;
use pith_runtime::{Model, Reasoner};

use crate::board::BOARD;
use crate::clock::SysTickClock;

/// Console baud rate on real boards (QEMU ignores it).
pub const BAUD: u32 = 115_200;

/// Serves the console on `port` forever. Call from the wiring file's `main` once the clocks and
/// the UART are up; `clock` times `bench`.
pub fn serve<P: Read + Write>(port: &mut P, clock: SysTickClock) -> ! {
    // The wiring's set-up frames have returned: only `main`'s frame and this one are live.
    memory::paint_stack();
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
        Err(e) => defmt::warn!(
            "no usable package ({}): model commands will answer ERR 4",
            e
        ),
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
            Err(e) => {
                defmt::warn!(
                    "knowledge bank refused ({}): corrupt or built for another model",
                    e
                );
                None
            }
        },
        _ => None,
    };
    // The reasoner lives in this frame (serve never returns) and `chat`'s ring and text buffer
    // in the arena's tail, so linking chat adds neither statics nor console stack.
    let reasoner = linked_reasoner();
    let (arena, chat_mem) = match &reasoner {
        Some(r) => {
            let keep = arena.len().saturating_sub(chat::words(r.dim()));
            arena.split_at_mut(keep)
        }
        None => (arena, &mut [][..]),
    };
    // The console (the model, the service and the line and frame buffers: kilobytes) is built
    // in one expression and completed through `&mut`: by-value builder steps each left a copy in
    // this frame, which never returns (10 KB more stack when the bank branch folded away).
    let mut console = Console::new(Service::new(
        model.as_ref().map_err(|e| *e),
        arena,
        info,
        clock,
    ));
    if let Some(b) = bank {
        console.service_mut().attach_bank(b);
    }
    if let Some(r) = &reasoner {
        attach_chat(console.service_mut(), r, chat_mem);
    }
    defmt::info!(
        "max tokens within the arena: {=usize}",
        console.service().max_tokens()
    );
    // `serve` returns only if the port reports end of input or an error; a UART does neither.
    let _ = console.serve(port);
    fatal("console stopped")
}

/// The linked reasoner, when both it and a response bank are linked and it validates.
fn linked_reasoner() -> Option<Reasoner<'static>> {
    let (r, b) = (package::reasoner(), package::chat_bank());
    if r.is_empty() || b.is_empty() {
        return None;
    }
    let reasoner = Reasoner::new(r).ok();
    if reasoner.is_none() {
        defmt::warn!("chat refused: the reasoner package is invalid");
    }
    reasoner
}

/// Attaches `chat` when the response bank was embedded by this very package and everything
/// agrees with the encoder; otherwise `chat` answers ERR 3 and the rest of the console works.
fn attach_chat<'m>(
    service: &mut Service<'m, SysTickClock>,
    reasoner: &'m Reasoner<'m>,
    mem: &'m mut [i32],
) {
    let Ok(model) = service.model() else {
        return;
    };
    let chat = Bank::for_model(package::chat_bank(), model)
        .and_then(|bank| Chat::new(reasoner, bank, model, mem))
        .and_then(|c| service.attach_chat(c));
    match chat {
        Ok(()) => defmt::info!(
            "chat: reasoner {=usize} bytes, response bank {=usize} bytes",
            package::reasoner().len(),
            package::chat_bank().len()
        ),
        Err(_) => defmt::warn!("chat refused: response bank or reasoner does not fit the encoder"),
    }
}

/// Logs why and stops: leaves QEMU with a failure status; on hardware, faults so that probe-rs
/// shows the log and a backtrace (without a debugger the core stays in the fault handler).
pub fn fatal(why: &str) -> ! {
    defmt::error!("fatal: {=str}", why);
    #[cfg(pith_semihosting)]
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    cortex_m::asm::udf()
}

/// Interrupts without a handler of their own. On the CMSDK boards the UART RX interrupt only wakes
/// `Uart::read` from WFI: clearing it is all there is to do. Anything else is unexpected: mask it
/// so it cannot storm.
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irqn: i16) {
    let Ok(irq) = u16::try_from(irqn) else {
        return;
    };
    if let pith_boards::Console::Cmsdk(u) = BOARD.console {
        if u.irqs.contains(&irq) {
            // SAFETY: the board table names this board's CMSDK UART0 at `u.base`.
            unsafe { uart::clear_rx_interrupt(u.base) };
            return;
        }
    }
    // `irq` is the interrupt being handled: a line the part has.
    cortex_m::peripheral::NVIC::mask(uart::Irq::new(irq));
}

#[cfg(pith_semihosting)]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    fatal("panic")
}
