//! STM32F405 (Netduino Plus 2, Feather STM32F405, Olimex H405) on stm32f4xx-hal: the console on
//! USART1, PA9 = TX, PA10 = RX, 115200 8N1.
//!
//! Clocks: HSI (16 MHz) in the QEMU build, because QEMU's `netduinoplus2` models no RCC ready bits
//! and the HAL would wait for the PLL forever; on hardware HSI through the PLL to 168 MHz, which
//! needs no crystal (the boards carry 8, 12 or 25 MHz ones).
#![no_std]
#![no_main]

use pith_firmware::clock::SysTickClock;
use pith_firmware::port::{NbSerial, Port};
use pith_firmware::{fatal, serve, BAUD};
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
use stm32f4xx_hal::serial;

#[cortex_m_rt::entry]
fn main() -> ! {
    let (Some(dp), Some(cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        fatal("peripherals taken twice")
    };
    let clocks = if cfg!(feature = "qemu") {
        Config::hsi()
    } else {
        Config::hsi().sysclk(168.MHz())
    };
    let mut rcc = dp.RCC.freeze(clocks);
    let gpioa = dp.GPIOA.split(&mut rcc);
    let config = serial::Config::default().baudrate(BAUD.bps());
    let Ok(usart) = dp
        .USART1
        .serial::<u8>((gpioa.pa9, gpioa.pa10), config, &mut rcc)
    else {
        fatal("USART1 refused 115200 8N1")
    };
    let clock = SysTickClock::start(cp.SYST, rcc.clocks.sysclk().raw());
    serve(&mut Port(NbSerial(usart)), clock)
}
