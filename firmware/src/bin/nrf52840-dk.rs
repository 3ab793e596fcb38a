//! nRF52840 DK on nrf52840-hal: the console on UARTE0, P0.06 = TX, P0.08 = RX, which the DK wires
//! to the J-Link's virtual COM port (the USB cable is the serial line). 64 MHz from the external
//! crystal, which keeps the baud rate within the UART's tolerance.
#![no_std]
#![no_main]

use hal::gpio::Level;
use hal::uarte::{Baudrate, Parity, Pins, Uarte};
use nrf52840_hal as hal;
use pith_firmware::clock::SysTickClock;
use pith_firmware::port::{Nb02Pair, Port};
use pith_firmware::{fatal, serve};

/// The nRF52840 core clock.
const CPU_HZ: u32 = 64_000_000;

#[cortex_m_rt::entry]
fn main() -> ! {
    let (Some(p), Some(cp)) = (hal::pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        fatal("peripherals taken twice")
    };
    let _clocks = hal::clocks::Clocks::new(p.CLOCK).enable_ext_hfosc();
    let port0 = hal::gpio::p0::Parts::new(p.P0);
    let pins = Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        cts: None,
        rts: None,
    };
    // 115200 baud: pith_firmware::BAUD, as the nRF's fixed baud-rate register values name it.
    let uarte = Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
    // EasyDMA reads and writes RAM only: the buffers are statics, handed out once.
    let (Some(tx_buf), Some(rx_buf)) = (
        cortex_m::singleton!(: [u8; 64] = [0; 64]),
        cortex_m::singleton!(: [u8; 1] = [0; 1]),
    ) else {
        fatal("UART buffers taken twice")
    };
    let Ok((tx, rx)) = uarte.split(tx_buf, rx_buf) else {
        fatal("UARTE0 split refused its buffers")
    };
    let clock = SysTickClock::start(cp.SYST, CPU_HZ);
    serve(&mut Port(Nb02Pair(rx, tx)), clock)
}
