//! SysTick as a 64-bit nanosecond clock (for `bench`) and an `embedded_hal::delay::DelayNs`.
//!
//! Under QEMU `-icount shift=0` one instruction takes one virtual nanosecond, so differences of
//! [`SysTickClock::now_ns`] count instructions (to the SysTick period, 1e9 / cpu_hz ns).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00ff_ffff;

/// SysTick wraps since boot. Only the SysTick handler writes it, so load+store is race-free
/// (and works on ARMv6-M, which has no atomic read-modify-write).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// A free-running clock on SysTick.
pub struct SysTickClock {
    /// Owned so nothing else reprograms it.
    _syst: SYST,
    cpu_hz: u32,
}

impl SysTickClock {
    /// Starts SysTick on the core clock with its longest period and the wrap interrupt on.
    pub fn start(mut syst: SYST, cpu_hz: u32) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickClock {
            _syst: syst,
            cpu_hz: cpu_hz.max(1_000_000),
        }
    }

    /// SysTick ticks since `start`. Call with interrupts enabled (thread mode outside critical
    /// sections): a wrap is then counted by the handler before the second load below.
    fn ticks(&self) -> u64 {
        loop {
            let before = WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            // A wrap between the loads makes `current` ambiguous: read again.
            if WRAPS.load(Ordering::Relaxed) == before {
                return ((before as u64) << 24) + (RELOAD - current.min(RELOAD)) as u64;
            }
        }
    }
}

impl pith_console::Clock for SysTickClock {
    fn now_ns(&mut self) -> u64 {
        // ns = ticks * 1e9 / hz, computed as ticks * 1000 / (hz / 1e6) to stay in u64 for centuries.
        self.ticks() * 1000 / (self.cpu_hz / 1_000_000) as u64
    }
}

impl embedded_hal::delay::DelayNs for SysTickClock {
    fn delay_ns(&mut self, ns: u32) {
        use pith_console::Clock;
        let end = self.now_ns() + ns as u64;
        while self.now_ns() < end {}
    }
}
