//! A HAL's polled UART as the console's `embedded_io` port. Each HAL's wiring file implements
//! [`PolledUart`] (two small functions); [`Port`] turns it into `Read + Write`.

use core::convert::Infallible;

/// The two things the console needs from a UART.
pub trait PolledUart {
    /// A received byte if one is waiting; `None` when none is (a receive error drops its byte:
    /// the console's line editor then sees a short or bad line and answers ERR).
    fn try_read(&mut self) -> Option<u8>;
    /// Sends `bytes`, waiting for room.
    fn write_all(&mut self, bytes: &[u8]);
    /// Waits until everything written has left.
    fn flush(&mut self) {}
}

/// `embedded_io::{Read, Write}` over a [`PolledUart`].
pub struct Port<U>(pub U);

impl<U: PolledUart> embedded_io::ErrorType for Port<U> {
    type Error = Infallible;
}

impl<U: PolledUart> embedded_io::Read for Port<U> {
    /// Spins for the first byte, then takes whatever else is already waiting.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let Some((first, rest)) = buf.split_first_mut() else {
            return Ok(0);
        };
        *first = loop {
            if let Some(b) = self.0.try_read() {
                break b;
            }
        };
        let mut n = 1;
        for slot in rest {
            match self.0.try_read() {
                Some(b) => *slot = b,
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }
}

impl<U: PolledUart> embedded_io::Write for Port<U> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        self.0.flush();
        Ok(())
    }
}

/// Any UART with `embedded-hal-nb` 1.0 serial traits (stm32f4xx-hal and others).
pub struct NbSerial<S>(pub S);

impl<S> PolledUart for NbSerial<S>
where
    S: embedded_hal_nb::serial::Read<u8> + embedded_hal_nb::serial::Write<u8>,
{
    fn try_read(&mut self) -> Option<u8> {
        self.0.read().ok()
    }

    fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // WouldBlock until the data register is free; the nb serial write has no other error
            // on these parts, and a lost byte must not stop the console.
            while let Err(nb::Error::WouldBlock) = self.0.write(b) {}
        }
    }

    fn flush(&mut self) {
        while let Err(nb::Error::WouldBlock) = self.0.flush() {}
    }
}

/// A receiver and a transmitter with `embedded-hal` 0.2 nb serial traits (stm32h7xx-hal,
/// nrf52840-hal's split UARTE).
pub struct Nb02Pair<R, T>(pub R, pub T);

impl<R, T> PolledUart for Nb02Pair<R, T>
where
    R: embedded_hal_02::serial::Read<u8>,
    T: embedded_hal_02::serial::Write<u8>,
{
    fn try_read(&mut self) -> Option<u8> {
        self.0.read().ok()
    }

    fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // As in NbSerial: wait while WouldBlock, drop the byte on any other error.
            while let Err(nb::Error::WouldBlock) = self.1.write(b) {}
        }
    }

    fn flush(&mut self) {
        while let Err(nb::Error::WouldBlock) = self.1.flush() {}
    }
}
