//! Firmware image for one board (the binary's name is the QEMU machine name).
#![no_std]
#![no_main]

#[cortex_m_rt::entry]
fn main() -> ! {
    pith_firmware::run()
}
