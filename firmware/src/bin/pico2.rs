//! Raspberry Pi Pico 2 (RP2350, Cortex-M33) on rp235x-hal: the console on UART0, GP0 = TX (pin 1),
//! GP1 = RX (pin 2), 115200 8N1. Clocks from the board's 12 MHz crystal through the PLL (150 MHz).
#![no_std]
#![no_main]

use pith_firmware::clock::SysTickClock;
use pith_firmware::port::{PolledUart, Port};
use pith_firmware::{fatal, serve, BAUD};
use rp235x_hal as hal;
use rp235x_hal::clocks::Clock;
use rp235x_hal::fugit::RateExtU32;
use rp235x_hal::uart::{
    DataBits, StopBits, UartConfig, UartDevice, UartPeripheral, ValidUartPinout,
};

/// The boot ROM starts only an image that carries this block in its first 4K (build.rs places
/// `.start_block` right after the vector table).
#[link_section = ".start_block"]
#[used]
pub static IMAGE_DEF: hal::block::ImageDef = hal::block::ImageDef::secure_exe();

/// The Pico 2's crystal.
const XTAL_HZ: u32 = 12_000_000;

struct Uart<D: UartDevice, P: ValidUartPinout<D>>(UartPeripheral<hal::uart::Enabled, D, P>);

impl<D: UartDevice, P: ValidUartPinout<D>> PolledUart for Uart<D, P> {
    fn try_read(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        match self.0.read_raw(&mut b) {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }

    fn write_all(&mut self, bytes: &[u8]) {
        self.0.write_full_blocking(bytes);
    }
}

#[hal::entry]
fn main() -> ! {
    let (Some(mut pac), Some(cp)) = (hal::pac::Peripherals::take(), cortex_m::Peripherals::take())
    else {
        fatal("peripherals taken twice")
    };
    let mut watchdog = hal::Watchdog::new(pac.WATCHDOG);
    let Ok(clocks) = hal::clocks::init_clocks_and_plls(
        XTAL_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    ) else {
        fatal("clocks did not start")
    };
    let sio = hal::Sio::new(pac.SIO);
    let pins = hal::gpio::Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let uart_pins = (
        pins.gpio0.into_function::<hal::gpio::FunctionUart>(),
        pins.gpio1.into_function::<hal::gpio::FunctionUart>(),
    );
    let Ok(uart) = UartPeripheral::new(pac.UART0, uart_pins, &mut pac.RESETS).enable(
        UartConfig::new(BAUD.Hz(), DataBits::Eight, None, StopBits::One),
        clocks.peripheral_clock.freq(),
    ) else {
        fatal("UART0 refused 115200 8N1")
    };
    let clock = SysTickClock::start(cp.SYST, clocks.system_clock.freq().to_Hz());
    serve(&mut Port(Uart(uart)), clock)
}
