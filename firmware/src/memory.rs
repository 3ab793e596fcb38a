//! What the image uses of the board's memory map, from cortex-m-rt's symbols.

use pith_boards::Region;

use crate::board::BOARD;

/// Flash (code and constants).
pub const FLASH: Region = BOARD.memory.flash;
/// RAM (statics and stack).
pub const RAM: Region = BOARD.memory.ram;

extern "C" {
    static __sidata: u8;
    static __sdata: u8;
    static __edata: u8;
    static __euninit: u8;
}

fn addr(p: *const u8) -> u32 {
    p as usize as u32
}

/// Flash bytes used: vector table, code, constants and the load image of `.data`.
pub fn flash_used() -> u32 {
    // Only the symbols' addresses are taken (never their contents); cortex-m-rt's link.x defines them.
    let (sidata, sdata, edata) = (
        addr(&raw const __sidata),
        addr(&raw const __sdata),
        addr(&raw const __edata),
    );
    (sidata - FLASH.origin) + (edata - sdata)
}

/// RAM bytes used by statics (`.data`, `.bss`, `.uninit`); the stack takes what is left.
pub fn ram_used() -> u32 {
    let euninit = addr(&raw const __euninit);
    euninit - RAM.origin
}

/// Fill word for the unused stack; a word that no longer holds it has been written by the stack.
const PAINT: u32 = 0x5354_4b21; // "STK!"

/// Paints the free part of the stack (from the end of the statics to just below the current
/// stack pointer), so [`stack_peak`] can later tell how deep the stack has ever reached.
/// Called once, first thing in `run`, while the stack is still shallow.
pub fn paint_stack() {
    let lo = (addr(&raw const __euninit) + 3) & !3;
    // Leave 256 bytes below the live frame alone: this function's own frame sits there.
    let hi = (cortex_m::register::msp::read() & !3).saturating_sub(256);
    let mut a = lo;
    while a < hi {
        // SAFETY: [lo, hi) lies between the end of the statics and the live stack frames, in RAM
        // that nothing has allocated; these are plain aligned word stores.
        unsafe { core::ptr::write_volatile(a as *mut u32, PAINT) };
        a += 4;
    }
}

/// Deepest stack use since boot, in bytes: from the top of RAM down to the lowest word that no
/// longer holds the paint.
pub fn stack_peak() -> u32 {
    let lo = (addr(&raw const __euninit) + 3) & !3;
    let top = RAM.origin + RAM.len;
    let mut a = lo;
    // SAFETY: aligned word reads of RAM between the statics and the top of the stack.
    while a < top && unsafe { core::ptr::read_volatile(a as *const u32) } == PAINT {
        a += 4;
    }
    top - a
}
