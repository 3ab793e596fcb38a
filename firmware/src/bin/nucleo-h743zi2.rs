//! Nucleo-H743ZI2 (STM32H743ZI, Cortex-M7) on stm32h7xx-hal: the console on USART3, PD8 = TX,
//! PD9 = RX, which the board wires to the ST-LINK's virtual COM port (the USB cable is the serial
//! line). 400 MHz from the internal oscillator through the PLL (VOS1, the LDO's default supply).
#![no_std]
#![no_main]

use pith_firmware::clock::SysTickClock;
use pith_firmware::port::{Nb02Pair, Port};
use pith_firmware::{fatal, serve, BAUD};
use stm32h7xx_hal::pac;
use stm32h7xx_hal::prelude::*;

#[cortex_m_rt::entry]
fn main() -> ! {
    let (Some(dp), Some(cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        fatal("peripherals taken twice")
    };
    let pwrcfg = dp.PWR.constrain().freeze();
    let ccdr = dp
        .RCC
        .constrain()
        .sys_ck(400.MHz())
        .freeze(pwrcfg, &dp.SYSCFG);
    let gpiod = dp.GPIOD.split(ccdr.peripheral.GPIOD);
    let pins = (gpiod.pd8.into_alternate(), gpiod.pd9.into_alternate());
    let Ok(serial) = dp
        .USART3
        .serial(pins, BAUD.bps(), ccdr.peripheral.USART3, &ccdr.clocks)
    else {
        fatal("USART3 refused 115200 8N1")
    };
    let (tx, rx) = serial.split();
    let clock = SysTickClock::start(cp.SYST, ccdr.clocks.sys_ck().raw());
    serve(&mut Port(Nb02Pair(rx, tx)), clock)
}
