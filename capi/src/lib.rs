//! pith-c: the C API of pith (`libpith.a`, `include/pith.h`).
//!
//! A thin layer over `pith-runtime` and `pith-console` for firmware written in C: open a package
//! from a pointer and a length (validated once), ask how big the arena must be, embed into the
//! caller's int8 buffer, compare, search a knowledge bank, and take a chat step with a reasoner.
//! Nothing allocates; every failure is an error code ([`pith_strerror`] names it); a null
//! pointer, a short buffer or a handle that was never opened is an error code, never undefined
//! behaviour on this side of the boundary.
//!
//! Handles are storage the caller owns (a `static` in C, usually): each `*_open` writes the
//! runtime's validated view into it and marks it open. The views borrow the package and bank
//! bytes and, for a chat, the reasoner and the chat memory, so those must stay where they are
//! while the handle is used — the one promise a C caller makes that Rust cannot check.
#![cfg_attr(target_os = "none", no_std)]
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

mod handle;
mod status;

use core::ffi::c_char;

use handle::{open, text};
use pith_console::chat::{self, Chat};
use pith_runtime::kb::{Bank, Hit, Index, Reply};
use pith_runtime::{Model, Reasoner};
pub use status::*;

/// Storage for an open model (its size covers every target: 64-bit hosts are the largest).
#[repr(C)]
pub struct pith_model {
    _magic: u32,
    _storage: [u64; PITH_MODEL_WORDS],
}

/// Storage for an open knowledge bank.
#[repr(C)]
pub struct pith_bank {
    _magic: u32,
    _storage: [u64; PITH_BANK_WORDS],
}

/// Storage for an open reasoner.
#[repr(C)]
pub struct pith_reasoner {
    _magic: u32,
    _storage: [u64; PITH_REASONER_WORDS],
}

/// Storage for an open chat (a conversation: the ring of its last turns lives in the memory
/// given to [`pith_chat_open`]).
#[repr(C)]
pub struct pith_chat {
    _magic: u32,
    _storage: [u64; PITH_CHAT_WORDS],
}

/// 64-bit words of a [`pith_model`]'s storage.
pub const PITH_MODEL_WORDS: usize = 768;
/// 64-bit words of a [`pith_bank`]'s storage.
pub const PITH_BANK_WORDS: usize = 32;
/// 64-bit words of a [`pith_reasoner`]'s storage.
pub const PITH_REASONER_WORDS: usize = 320;
/// 64-bit words of a [`pith_chat`]'s storage.
pub const PITH_CHAT_WORDS: usize = 48;

handle::storage!(pith_model, Model<'static>, 0x504d_4f44);
handle::storage!(pith_bank, Bank<'static>, 0x5042_4e4b);
handle::storage!(pith_reasoner, Reasoner<'static>, 0x5052_534e);
handle::storage!(pith_chat, Chat<'static>, 0x5043_4854);

/// One search result.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct pith_hit {
    /// Entry index in the bank.
    pub index: u32,
    /// Score: a cosine times 65536 (65536 = 1.0).
    pub score: i32,
}

/// What a chat step answered.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct pith_chat_answer {
    /// The answer's entry in the response bank ([`pith_bank_text`] gives its text).
    pub entry: u32,
    /// Its score: the cosine to the predicted turn plus the weighted lexical match.
    pub score: f32,
    /// FNV-1a of the predicted int8 vector (comparable across machines).
    pub prediction: u32,
    /// Best minus second-best score before refining.
    pub margin: f32,
    /// 1 when the answer went through refinement.
    pub refined: i32,
}

/// Most hits one [`pith_bank_search`] returns (its results live on the stack meanwhile).
pub const PITH_MAX_HITS: usize = 32;

/// Which text of a bank entry [`pith_bank_text`] copies.
pub const PITH_TEXT_ID: u32 = 0;
/// The entry's question (a response bank's sentence).
pub const PITH_TEXT_QUESTION: u32 = 1;
/// The entry's answer.
pub const PITH_TEXT_ANSWER: u32 = 2;

/// Opens the `.pith` package at `package` (`len` bytes) into `model`: checksum, header, sections
/// and shapes are validated once; no later call on the model fails on its contents.
///
/// # Safety
/// `package` must point to `len` readable bytes that stay unchanged, in place, while `model` is
/// used; `model` must point to writable storage (it may be uninitialised).
#[no_mangle]
pub unsafe extern "C" fn pith_model_open(
    model: *mut pith_model,
    package: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: the caller promises `package` holds `len` bytes that outlive the handle.
    let Some(bytes) = (unsafe { handle::bytes(package, len) }) else {
        return PITH_ERR_NULL;
    };
    // SAFETY: the caller promises `model` is writable storage.
    unsafe { open(model, Model::new(bytes)) }
}

/// The model's vector width (values per embedding); 0 for a handle that is not open.
///
/// # Safety
/// `model` is null or points to a `pith_model` (open or not).
#[no_mangle]
pub unsafe extern "C" fn pith_model_dim(model: *const pith_model) -> usize {
    // SAFETY: as the caller promises.
    unsafe { pith_model::get(model) }.map_or(0, |m| m.dim())
}

/// `int32_t` words of arena [`pith_embed`] needs for inputs of up to `tokens` tokens (`[CLS]` and
/// `[SEP]` included; longer inputs are cut to what the arena holds); 0 for a handle that is not
/// open. Size a static arena with it once, on the host or at start-up.
///
/// # Safety
/// `model` is null or points to a `pith_model`.
#[no_mangle]
pub unsafe extern "C" fn pith_model_arena_words(model: *const pith_model, tokens: usize) -> usize {
    // SAFETY: as the caller promises.
    unsafe { pith_model::get(model) }.map_or(0, |m| m.arena_words(tokens))
}

/// Embeds the UTF-8 text `text` (`len` bytes, no terminator needed) into `out` (`out_len` ≥
/// [`pith_model_dim`] int8 values); `tokens` (may be null) receives the token count.
///
/// # Safety
/// Every non-null pointer must point to as many elements as its length says; `arena` to
/// `arena_words` writable, 4-byte-aligned `int32_t`.
#[no_mangle]
pub unsafe extern "C" fn pith_embed(
    model: *const pith_model,
    text_ptr: *const c_char,
    len: usize,
    arena: *mut i32,
    arena_words: usize,
    out: *mut i8,
    out_len: usize,
    tokens: *mut usize,
) -> i32 {
    // SAFETY (all four): the caller promises each pointer covers its length.
    let model = match unsafe { pith_model::get(model) } {
        Ok(m) => m,
        Err(e) => return e,
    };
    let text = match unsafe { text(text_ptr, len) } {
        Ok(t) => t,
        Err(e) => return e,
    };
    let (Some(arena), Some(out)) = (unsafe { handle::slice_mut(arena, arena_words) }, unsafe {
        handle::slice_mut(out, out_len)
    }) else {
        return PITH_ERR_NULL;
    };
    let Some(out) = out.get_mut(..model.dim()) else {
        return PITH_ERR_BUFFER;
    };
    match model.embed(text, arena, out) {
        Ok(n) => {
            // SAFETY: `tokens` is null or points to a writable size_t.
            if let Some(t) = unsafe { tokens.as_mut() } {
                *t = n;
            }
            PITH_OK
        }
        Err(e) => code(e),
    }
}

/// The cosine of two int8 vectors of `len` values, computed exactly in integers, into `out`.
///
/// # Safety
/// `a` and `b` point to `len` values each; `out` to a writable float.
#[no_mangle]
pub unsafe extern "C" fn pith_cosine(a: *const i8, b: *const i8, len: usize, out: *mut f32) -> i32 {
    // SAFETY: the caller promises `len` values behind each pointer and a writable `out`.
    let (Some(a), Some(b), Some(out)) = (
        unsafe { handle::slice(a, len) },
        unsafe { handle::slice(b, len) },
        unsafe { out.as_mut() },
    ) else {
        return PITH_ERR_NULL;
    };
    *out = pith_runtime::cosine_i8(a, b);
    PITH_OK
}

/// Opens the knowledge bank at `bytes` (`len` bytes) into `bank`, validated whole. With a
/// `model` (may be null), a bank built for another model is refused.
///
/// # Safety
/// `bytes` must point to `len` readable bytes that stay in place while `bank` is used; `bank`
/// to writable storage; `model` is null or points to a `pith_model`.
#[no_mangle]
pub unsafe extern "C" fn pith_bank_open(
    bank: *mut pith_bank,
    bytes: *const u8,
    len: usize,
    model: *const pith_model,
) -> i32 {
    // SAFETY: the caller promises `bytes` holds `len` bytes that outlive the handle.
    let Some(bytes) = (unsafe { handle::bytes(bytes, len) }) else {
        return PITH_ERR_NULL;
    };
    let opened = match model.is_null() {
        true => Bank::new_checked(bytes),
        // SAFETY: non-null, so a `pith_model` by the caller's promise.
        false => match unsafe { pith_model::get(model) } {
            Ok(m) => Bank::for_model(bytes, m),
            Err(e) => return e,
        },
    };
    // SAFETY: the caller promises `bank` is writable storage.
    unsafe { open(bank, opened) }
}

/// Entries in the bank; 0 for a handle that is not open.
///
/// # Safety
/// `bank` is null or points to a `pith_bank`.
#[no_mangle]
pub unsafe extern "C" fn pith_bank_len(bank: *const pith_bank) -> usize {
    // SAFETY: as the caller promises.
    unsafe { pith_bank::get(bank) }.map_or(0, |b| b.len())
}

/// The best `k` entries (at most [`PITH_MAX_HITS`]) for the int8 `query` (`len` values: the
/// bank's dimension), best first, into `hits`; `found` receives how many were written. Scores
/// each entry by the better of its question's and its answer's cosine.
///
/// # Safety
/// `query` points to `len` values, `hits` to `k` writable `pith_hit`, `found` to a size_t.
#[no_mangle]
pub unsafe extern "C" fn pith_bank_search(
    bank: *const pith_bank,
    query: *const i8,
    len: usize,
    hits: *mut pith_hit,
    k: usize,
    found: *mut usize,
) -> i32 {
    // SAFETY (all): the caller promises each pointer covers its length.
    let bank = match unsafe { pith_bank::get(bank) } {
        Ok(b) => b,
        Err(e) => return e,
    };
    let (Some(query), Some(hits), Some(found)) = (
        unsafe { handle::slice(query, len) },
        unsafe { handle::slice_mut(hits, k) },
        unsafe { found.as_mut() },
    ) else {
        return PITH_ERR_NULL;
    };
    if query.len() != bank.dim() {
        return code(pith_runtime::Error::BankDimensionMismatch);
    }
    let mut best = [Hit::default(); PITH_MAX_HITS];
    let want = best.len().min(hits.len());
    let n = bank.search(query, Index::Both, &mut best[..want]);
    for (slot, &h) in hits.iter_mut().zip(&best[..n]) {
        *slot = to_hit(h);
    }
    *found = n;
    PITH_OK
}

/// The device's `ask`: the best entry for `query` into `hit`, and in `confident` 1 when it
/// clears the bank's abstain threshold (0: the bank would rather not answer).
///
/// # Safety
/// `query` points to `len` values; `hit` and `confident` are writable.
#[no_mangle]
pub unsafe extern "C" fn pith_bank_ask(
    bank: *const pith_bank,
    query: *const i8,
    len: usize,
    hit: *mut pith_hit,
    confident: *mut i32,
) -> i32 {
    // SAFETY (all): the caller promises each pointer covers its length.
    let bank = match unsafe { pith_bank::get(bank) } {
        Ok(b) => b,
        Err(e) => return e,
    };
    let (Some(query), Some(hit), Some(confident)) = (
        unsafe { handle::slice(query, len) },
        unsafe { hit.as_mut() },
        unsafe { confident.as_mut() },
    ) else {
        return PITH_ERR_NULL;
    };
    if query.len() != bank.dim() {
        return code(pith_runtime::Error::BankDimensionMismatch);
    }
    let (h, sure) = match bank.ask(query) {
        Reply::Answer(h) => (h, 1),
        Reply::Abstain(Some(h)) => (h, 0),
        Reply::Abstain(None) => return PITH_ERR_RANGE,
    };
    *hit = to_hit(h);
    *confident = sure;
    PITH_OK
}

/// Copies text `field` ([`PITH_TEXT_ID`], [`PITH_TEXT_QUESTION`] or [`PITH_TEXT_ANSWER`]) of
/// entry `entry` into `buf` (`cap` bytes), NUL-terminated; `len` (may be null) receives its
/// length without the terminator. A `buf` too short gets nothing but `PITH_ERR_BUFFER`, with the
/// length needed in `len`.
///
/// # Safety
/// `buf` points to `cap` writable bytes; `len` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn pith_bank_text(
    bank: *const pith_bank,
    entry: usize,
    field: u32,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY (all): the caller promises each pointer covers its length.
    let bank = match unsafe { pith_bank::get(bank) } {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(e) = bank.entry(entry) else {
        return PITH_ERR_RANGE;
    };
    let t = match field {
        PITH_TEXT_ID => e.id,
        PITH_TEXT_QUESTION => e.question,
        PITH_TEXT_ANSWER => e.answer,
        _ => return PITH_ERR_RANGE,
    };
    // SAFETY: `len` is null or writable, as promised.
    if let Some(l) = unsafe { len.as_mut() } {
        *l = t.len();
    }
    let Some(buf) = (unsafe { handle::slice_mut(buf.cast::<u8>(), cap) }) else {
        return PITH_ERR_NULL;
    };
    let Some(body) = buf.get_mut(..t.len()) else {
        return PITH_ERR_BUFFER;
    };
    if t.decode_into(body).len() != t.len() {
        return PITH_ERR_BUFFER;
    }
    match buf.get_mut(t.len()) {
        Some(nul) => *nul = 0,
        None => return PITH_ERR_BUFFER,
    }
    PITH_OK
}

/// Opens the integer reasoner package at `package` (`len` bytes) into `reasoner`.
///
/// # Safety
/// `package` must point to `len` readable bytes that stay in place while `reasoner` is used;
/// `reasoner` to writable storage.
#[no_mangle]
pub unsafe extern "C" fn pith_reasoner_open(
    reasoner: *mut pith_reasoner,
    package: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: the caller promises `package` holds `len` bytes that outlive the handle.
    let Some(bytes) = (unsafe { handle::bytes(package, len) }) else {
        return PITH_ERR_NULL;
    };
    // SAFETY: the caller promises `reasoner` is writable storage.
    unsafe { open(reasoner, Reasoner::new(bytes)) }
}

/// `int32_t` words of memory [`pith_chat_open`] needs for turn vectors of `dim` values.
#[no_mangle]
pub extern "C" fn pith_chat_words(dim: usize) -> usize {
    chat::words(dim)
}

/// Opens a conversation over `reasoner` answering from the response bank `bank`, its turns
/// embedded by `model`: the three are checked to go together once (the reasoner and the bank
/// record the encoder package they were built with: `PITH_ERR_REASONER_MODEL`,
/// `PITH_ERR_BANK_MODEL`), and every [`pith_chat_step`] must pass this same model. `mem`
/// (`words` ≥ [`pith_chat_words`]`(dim)`) holds the turns.
///
/// # Safety
/// `model`, `reasoner` and `bank` point to open handles; `reasoner` and `bank` stay in place
/// (not moved, not reopened) while the chat is used, and so does `mem` (`words` writable,
/// 4-byte-aligned `int32_t`); `chat` points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn pith_chat_open(
    chat: *mut pith_chat,
    model: *const pith_model,
    reasoner: *const pith_reasoner,
    bank: *const pith_bank,
    mem: *mut i32,
    words: usize,
) -> i32 {
    // SAFETY (all): the caller promises open handles and memory that outlive the chat.
    let (model, reasoner, bank) = match unsafe {
        (
            pith_model::get(model),
            pith_reasoner::get(reasoner),
            pith_bank::get(bank),
        )
    } {
        (Ok(m), Ok(r), Ok(b)) => (m, r, *b),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
    };
    let Some(mem) = (unsafe { handle::slice_mut(mem, words) }) else {
        return PITH_ERR_NULL;
    };
    unsafe { open(chat, Chat::new(reasoner, bank, model, mem)) }
}

/// Forgets the conversation.
///
/// # Safety
/// `chat` is null or points to a `pith_chat`.
#[no_mangle]
pub unsafe extern "C" fn pith_chat_reset(chat: *mut pith_chat) -> i32 {
    // SAFETY: as the caller promises.
    match unsafe { pith_chat::get_mut(chat) } {
        Ok(c) => {
            c.reset();
            PITH_OK
        }
        Err(e) => e,
    }
}

/// One turn: embeds the UTF-8 `text` (`len` bytes) with `model`, predicts the next turn, answers
/// from the bank into `answer` and keeps both turns. `arena` (`arena_words`) is the scratch of the
/// encoder and the reasoner (the larger of [`pith_model_arena_words`] and the reasoner's need);
/// `scratch` holds `scratch_len` ≥ 2 × dim int8 values.
///
/// # Safety
/// Every pointer covers its length; `chat` and `model` are open handles (the model is the
/// encoder the bank was built with).
#[no_mangle]
pub unsafe extern "C" fn pith_chat_step(
    chat: *mut pith_chat,
    model: *const pith_model,
    text_ptr: *const c_char,
    len: usize,
    arena: *mut i32,
    arena_words: usize,
    scratch: *mut i8,
    scratch_len: usize,
    answer: *mut pith_chat_answer,
) -> i32 {
    // SAFETY (all): the caller promises each pointer covers its length.
    let (chat, model) = match unsafe { (pith_chat::get_mut(chat), pith_model::get(model)) } {
        (Ok(c), Ok(m)) => (c, m),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let text = match unsafe { text(text_ptr, len) } {
        Ok(t) => t,
        Err(e) => return e,
    };
    let (Some(arena), Some(scratch), Some(answer)) = (
        unsafe { handle::slice_mut(arena, arena_words) },
        unsafe { handle::slice_mut(scratch, scratch_len) },
        unsafe { answer.as_mut() },
    ) else {
        return PITH_ERR_NULL;
    };
    let dim = model.dim();
    if scratch.len() < 2 * dim {
        return PITH_ERR_BUFFER;
    }
    let (a, b) = scratch.split_at_mut(dim);
    match chat.step(model, text, arena, a, b) {
        Ok(ans) => {
            *answer = pith_chat_answer {
                entry: ans.entry as u32,
                score: ans.score,
                prediction: ans.prediction,
                margin: ans.margin,
                refined: i32::from(ans.refined),
            };
            PITH_OK
        }
        Err(e) => code(e),
    }
}

/// On a bare-metal target the library brings its own panic handler: no path of the runtime
/// panics on any input, so reaching it means a bug; the core stops there rather than unwinding
/// into C.
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

fn to_hit(h: Hit) -> pith_hit {
    pith_hit {
        index: h.index as u32,
        score: h.score,
    }
}
