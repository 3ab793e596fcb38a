//! defmt logger over semihosting *stderr*: QEMU writes it to its own stderr, so the UART can keep
//! stdin/stdout (the runner and the test harness send stderr to a `.defmt` file for defmt-print).
//! Each frame is collected and written with one semihosting call (each call is a trap to the host).
//! On a real board semihosting needs a debugger attached.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt;
use cortex_m::register::primask;
use cortex_m_semihosting::hio::{self, HostStream};

const FRAME_BUF: usize = 256;

struct State {
    encoder: defmt::Encoder,
    frame: heapless::Vec<u8, FRAME_BUF>,
    stream: Option<HostStream>,
    /// Whether interrupts were enabled before `acquire` masked them.
    restore: bool,
}

impl State {
    fn push(
        frame: &mut heapless::Vec<u8, FRAME_BUF>,
        stream: &mut Option<HostStream>,
        bytes: &[u8],
    ) {
        for &b in bytes {
            if frame.push(b).is_err() {
                Self::send(frame, stream);
                let _ = frame.push(b);
            }
        }
    }

    fn send(frame: &mut heapless::Vec<u8, FRAME_BUF>, stream: &mut Option<HostStream>) {
        if stream.is_none() {
            *stream = hio::hstderr().ok();
        }
        if let Some(s) = stream {
            // Logging must never stop the firmware: a failed write loses this frame only.
            let _ = s.write_all(frame);
        }
        frame.clear();
    }
}

struct Shared {
    taken: AtomicBool,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only touched between `acquire` and `release`, with interrupts masked and
// `taken` set, so there is never more than one accessor (single core).
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    taken: AtomicBool::new(false),
    state: UnsafeCell::new(State {
        encoder: defmt::Encoder::new(),
        frame: heapless::Vec::new(),
        stream: None,
        restore: false,
    }),
};

#[defmt::global_logger]
struct SemihostingStderr;

// SAFETY: acquire/release bracket every access with interrupts masked; re-entry (a log inside a
// log) is refused by `taken` instead of aliasing the state.
unsafe impl defmt::Logger for SemihostingStderr {
    fn acquire() {
        let was_active = primask::read().is_active();
        interrupt::disable();
        if SHARED.taken.load(Ordering::Relaxed) {
            // defmt's contract forbids nested acquire; fail loudly rather than corrupt frames.
            crate::fatal("defmt logger re-entered");
        }
        SHARED.taken.store(true, Ordering::Relaxed);
        // SAFETY: exclusive, see `Sync` above.
        let s = unsafe { &mut *SHARED.state.get() };
        s.restore = was_active;
        let State {
            encoder,
            frame,
            stream,
            ..
        } = s;
        encoder.start_frame(|b| State::push(frame, stream, b));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: the caller holds the logger (defmt contract), so access is exclusive.
        let s = unsafe { &mut *SHARED.state.get() };
        let State {
            encoder,
            frame,
            stream,
            restore,
        } = s;
        encoder.end_frame(|b| State::push(frame, stream, b));
        State::send(frame, stream);
        let restore = *restore;
        SHARED.taken.store(false, Ordering::Relaxed);
        if restore {
            // SAFETY: interrupts were enabled when `acquire` masked them; this restores that.
            unsafe { interrupt::enable() };
        }
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: the caller holds the logger (defmt contract), so access is exclusive.
        let s = unsafe { &mut *SHARED.state.get() };
        let State {
            encoder,
            frame,
            stream,
            ..
        } = s;
        encoder.write(bytes, |b| State::push(frame, stream, b));
    }
}
