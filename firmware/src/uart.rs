//! CMSDK APB UART (the MPS2/MPS3 boards' UART0) behind `embedded_io::{Read, Write}`.
//!
//! Polled transmit; receive sleeps in WFI until the RX interrupt (whose handler only clears it)
//! instead of spinning, which keeps QEMU idle between lines.

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTCLEAR: usize = 0x0c;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const STATE_RX_OVERRUN: u32 = 1 << 3;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_RX_INT_EN: u32 = 1 << 3;
const INT_RX: u32 = 1 << 1;

/// An external interrupt line. Built only inside the firmware, from the board table or from the
/// number of the interrupt being handled, so every value is a line the part has.
#[derive(Clone, Copy)]
pub struct Irq(u16);

impl Irq {
    /// The line `n`; the caller takes it from the board table or the active interrupt.
    pub(crate) const fn new(n: u16) -> Self {
        Irq(n)
    }
}

// SAFETY: `Irq` is only built by `Irq::new` inside this crate, from the board table or the active
// interrupt's number: valid external interrupt lines of the part.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// UART0 of the board.
pub struct Uart {
    base: usize,
    /// Receive overruns seen (bytes lost); QEMU applies back-pressure, so this stays 0 there.
    pub overruns: u32,
}

impl Uart {
    /// Takes the UART at `base` and enables it at `baud` from a `pclk_hz` clock.
    ///
    /// # Safety
    /// `base` must be a CMSDK APB UART that nothing else drives, and `irqs` its interrupt lines.
    pub unsafe fn new(base: usize, irqs: [u16; 2], pclk_hz: u32, baud: u32) -> Self {
        let uart = Uart { base, overruns: 0 };
        // The CMSDK UART refuses divisors below 16.
        uart.write_reg(BAUDDIV, (pclk_hz / baud.max(1)).max(16));
        uart.write_reg(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN);
        for irq in irqs {
            // SAFETY: the firmware's DefaultHandler serves these lines (it clears the RX interrupt).
            unsafe { NVIC::unmask(Irq::new(irq)) };
        }
        uart
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: base is this UART's register block; offsets are its registers.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn rx_full(&self) -> bool {
        self.read_reg(STATE) & STATE_RX_FULL != 0
    }

    /// Sleeps until a byte has arrived.
    fn wait_rx(&mut self) {
        while !self.rx_full() {
            cortex_m::interrupt::free(|_| {
                // Checked again with interrupts masked: a byte arriving after this check pends the
                // RX interrupt, which wakes WFI even though PRIMASK holds it off; it is taken (and
                // cleared by DefaultHandler) when the critical section ends.
                if !self.rx_full() {
                    cortex_m::asm::wfi();
                }
            });
        }
        if self.read_reg(STATE) & STATE_RX_OVERRUN != 0 {
            self.overruns = self.overruns.wrapping_add(1);
            self.write_reg(STATE, STATE_RX_OVERRUN);
        }
    }
}

/// Acknowledges the RX interrupt of the UART at `base` (called from the interrupt handler, which
/// cannot own the [`Uart`]).
///
/// # Safety
/// `base` must be the register block of a CMSDK APB UART (the board table's console UART): the
/// store goes to `base + 0x0c` whatever `base` is.
pub unsafe fn clear_rx_interrupt(base: usize) {
    // SAFETY: the caller's promise that `base` is a CMSDK UART; INTCLEAR is write-1-to-clear and
    // touches nothing but its interrupt status.
    unsafe { write_volatile((base + INTCLEAR) as *mut u32, INT_RX) }
}

impl embedded_io::ErrorType for Uart {
    type Error = Infallible;
}

impl embedded_io::Read for Uart {
    /// Blocks for the first byte, then takes whatever else is already waiting.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.wait_rx();
        let mut n = 0;
        for slot in buf.iter_mut() {
            if !self.rx_full() {
                break;
            }
            *slot = self.read_reg(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            while self.read_reg(STATE) & STATE_TX_FULL != 0 {}
            self.write_reg(DATA, b as u32);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.read_reg(STATE) & STATE_TX_FULL != 0 {}
        Ok(())
    }
}
