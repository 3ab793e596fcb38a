//! Handles: caller-owned storage that holds a runtime view once opened, marked by a magic word so
//! that a handle never opened (or whose open failed) is refused rather than read.

use core::ffi::c_char;

use crate::status::{code, PITH_ERR_HANDLE, PITH_ERR_NULL, PITH_ERR_UTF8, PITH_OK};

/// Ties a handle type to the view it stores and its magic word, and checks at compile time that
/// the storage is large and aligned enough on the target being built.
macro_rules! storage {
    ($handle:ident, $view:ty, $magic:expr) => {
        const _: () = assert!(
            core::mem::size_of::<$view>() <= core::mem::size_of::<$handle>() - 8
                && core::mem::align_of::<$view>() <= 8
        );
        impl crate::handle::Handle for $handle {
            type View = $view;
            const MAGIC: u32 = $magic;
            fn magic(&mut self) -> &mut u32 {
                &mut self._magic
            }
            fn magic_ref(&self) -> u32 {
                self._magic
            }
            fn view_ptr(&self) -> *const $view {
                self._storage.as_ptr().cast()
            }
            fn view_mut_ptr(&mut self) -> *mut $view {
                self._storage.as_mut_ptr().cast()
            }
        }
        impl $handle {
            /// The open view behind `h`, or the error code for a null or unopened handle.
            ///
            /// # Safety
            /// `h` is null or points to a live value of this handle type.
            #[allow(dead_code)]
            unsafe fn get<'h>(h: *const $handle) -> Result<&'h $view, i32> {
                // SAFETY: null or a live handle, as the caller promises.
                let h = unsafe { h.as_ref() }.ok_or(crate::status::PITH_ERR_NULL)?;
                crate::handle::Handle::view(h)
            }

            /// [`Self::get`], mutably.
            ///
            /// # Safety
            /// As [`Self::get`], and no other reference to the handle is live.
            #[allow(dead_code)]
            unsafe fn get_mut<'h>(h: *mut $handle) -> Result<&'h mut $view, i32> {
                // SAFETY: null or a live, unaliased handle, as the caller promises.
                let h = unsafe { h.as_mut() }.ok_or(crate::status::PITH_ERR_NULL)?;
                crate::handle::Handle::view_mut(h)
            }
        }
    };
}
pub(crate) use storage;

/// A handle type and the runtime view it stores.
pub trait Handle {
    /// The runtime's validated view.
    type View;
    /// Marks storage that holds an open view.
    const MAGIC: u32;
    /// The magic word, to set.
    fn magic(&mut self) -> &mut u32;
    /// The magic word.
    fn magic_ref(&self) -> u32;
    /// Where the view lives.
    fn view_ptr(&self) -> *const Self::View;
    /// Where the view lives, to write.
    fn view_mut_ptr(&mut self) -> *mut Self::View;

    /// The view, when the handle was opened.
    fn view(&self) -> Result<&Self::View, i32> {
        if self.magic_ref() != Self::MAGIC {
            return Err(PITH_ERR_HANDLE);
        }
        // SAFETY: the magic word is only set by `open`, right after it wrote a view of this
        // type at this address (size and alignment checked by `storage!`).
        Ok(unsafe { &*self.view_ptr() })
    }

    /// The view, mutably, when the handle was opened.
    fn view_mut(&mut self) -> Result<&mut Self::View, i32> {
        if self.magic_ref() != Self::MAGIC {
            return Err(PITH_ERR_HANDLE);
        }
        // SAFETY: as in `view`; `&mut self` makes the borrow unique.
        Ok(unsafe { &mut *self.view_mut_ptr() })
    }
}

/// Writes the outcome of an open into `h`: the view and the magic word, or a cleared magic word
/// and the error code.
///
/// # Safety
/// `h` is null or points to writable storage of type `H` (it may be uninitialised).
pub unsafe fn open<H: Handle>(h: *mut H, view: Result<H::View, pith_runtime::Error>) -> i32 {
    if h.is_null() {
        return PITH_ERR_NULL;
    }
    // Raw-pointer writes only: the storage may be uninitialised, so no reference to it is made
    // before the magic word is written.
    // SAFETY: `h` is non-null and writable by the caller's promise; `magic()`'s field and the
    // storage are plain integers, valid for any bits once written here.
    unsafe {
        core::ptr::write_bytes(h.cast::<u8>(), 0, core::mem::size_of::<H>());
        let h = &mut *h;
        match view {
            Ok(v) => {
                core::ptr::write(h.view_mut_ptr(), v);
                *h.magic() = H::MAGIC;
                PITH_OK
            }
            Err(e) => code(e),
        }
    }
}

/// `len` bytes at `p` for as long as the caller keeps them (`None` for null; an empty slice for
/// a zero length).
///
/// # Safety
/// `p` is null or points to `len` readable bytes that stay unchanged while the result is used.
pub unsafe fn bytes(p: *const u8, len: usize) -> Option<&'static [u8]> {
    // SAFETY: as the caller promises.
    unsafe { slice(p, len) }
}

/// `len` values at `p` (`None` for null or a misaligned pointer).
///
/// # Safety
/// `p` is null or points to `len` readable values.
pub unsafe fn slice<'a, T>(p: *const T, len: usize) -> Option<&'a [T]> {
    if p.is_null() || !p.is_aligned() {
        return None;
    }
    // SAFETY: non-null and aligned here, `len` readable values by the caller's promise.
    Some(unsafe { core::slice::from_raw_parts(p, len) })
}

/// `len` writable values at `p` (`None` for null or a misaligned pointer).
///
/// # Safety
/// `p` is null or points to `len` writable values no other reference aliases.
pub unsafe fn slice_mut<'a, T>(p: *mut T, len: usize) -> Option<&'a mut [T]> {
    if p.is_null() || !p.is_aligned() {
        return None;
    }
    // SAFETY: non-null and aligned here, `len` writable unaliased values by the caller's promise.
    Some(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// The UTF-8 text of `len` bytes at `p` (a null `p` with a zero length is the empty text).
///
/// # Safety
/// `p` is null or points to `len` readable bytes.
pub unsafe fn text<'a>(p: *const c_char, len: usize) -> Result<&'a str, i32> {
    if p.is_null() && len == 0 {
        return Ok("");
    }
    // SAFETY: as the caller promises.
    let b = unsafe { slice(p.cast::<u8>(), len) }.ok_or(PITH_ERR_NULL)?;
    core::str::from_utf8(b).map_err(|_| PITH_ERR_UTF8)
}
