//! Firmware image for an MPS2/MPS3 reference board (QEMU; the binary's name is the board's).
#![no_std]
#![no_main]

#[cortex_m_rt::entry]
fn main() -> ! {
    pith_firmware::mps::main()
}
