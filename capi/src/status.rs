//! Status codes: 0 for success, negative for a misuse of the C API, positive for what the runtime
//! refused (one per `pith_runtime::Error` kind), each named by [`pith_strerror`].

use core::ffi::c_char;

use pith_runtime::Error;

/// Success.
pub const PITH_OK: i32 = 0;
/// A pointer that must not be null was null (or misaligned for its type).
pub const PITH_ERR_NULL: i32 = -1;
/// A handle that was never opened, or whose open failed.
pub const PITH_ERR_HANDLE: i32 = -2;
/// The text is not UTF-8.
pub const PITH_ERR_UTF8: i32 = -3;
/// An output buffer is too short.
pub const PITH_ERR_BUFFER: i32 = -4;
/// An index or a selector out of range (or a search of an empty bank).
pub const PITH_ERR_RANGE: i32 = -5;

/// The package is truncated.
pub const PITH_ERR_PACKAGE_TRUNCATED: i32 = 1;
/// Not a `.pith` package (bad magic).
pub const PITH_ERR_PACKAGE_MAGIC: i32 = 2;
/// A package format version this library does not read.
pub const PITH_ERR_PACKAGE_VERSION: i32 = 3;
/// The package's checksum does not match (corrupt or partly written).
pub const PITH_ERR_PACKAGE_CHECKSUM: i32 = 4;
/// The package is malformed (header, sections, configuration or vocabulary).
pub const PITH_ERR_PACKAGE_CORRUPT: i32 = 5;
/// A section the model needs is missing.
pub const PITH_ERR_PACKAGE_MISSING: i32 = 6;
/// A model of another kind (an encoder where a reasoner belongs, or the other way round).
pub const PITH_ERR_PACKAGE_KIND: i32 = 7;
/// The arena is smaller than the call needs.
pub const PITH_ERR_ARENA: i32 = 8;
/// A vector or buffer does not have the model's dimension.
pub const PITH_ERR_DIMENSION: i32 = 9;
/// The knowledge bank is truncated or malformed.
pub const PITH_ERR_BANK_CORRUPT: i32 = 10;
/// The knowledge bank was built for another model (dimension or package).
pub const PITH_ERR_BANK_MODEL: i32 = 11;
/// A knowledge-bank format version this library does not read.
pub const PITH_ERR_BANK_VERSION: i32 = 12;
/// A reasoner window is empty or too long, or a response sentence too long to keep.
pub const PITH_ERR_CHAT: i32 = 13;
/// The reasoner was built over another encoder package than the model given with it.
pub const PITH_ERR_REASONER_MODEL: i32 = 14;
/// Another runtime error.
pub const PITH_ERR_OTHER: i32 = 99;

/// The status code of a runtime error.
pub fn code(e: Error) -> i32 {
    match e {
        Error::PackageTruncated => PITH_ERR_PACKAGE_TRUNCATED,
        Error::PackageBadMagic => PITH_ERR_PACKAGE_MAGIC,
        Error::PackageUnsupportedVersion(_) => PITH_ERR_PACKAGE_VERSION,
        Error::PackageBadChecksum => PITH_ERR_PACKAGE_CHECKSUM,
        Error::PackageBadHeader
        | Error::PackageBadSection
        | Error::PackageBadConfig
        | Error::VocabCorrupt => PITH_ERR_PACKAGE_CORRUPT,
        Error::PackageMissingSection => PITH_ERR_PACKAGE_MISSING,
        Error::PackageWrongKind => PITH_ERR_PACKAGE_KIND,
        Error::ArenaTooSmall => PITH_ERR_ARENA,
        Error::OutputSizeMismatch => PITH_ERR_DIMENSION,
        Error::BankCorrupt => PITH_ERR_BANK_CORRUPT,
        Error::BankDimensionMismatch | Error::BankModelMismatch => PITH_ERR_BANK_MODEL,
        Error::BankUnsupportedVersion(_) => PITH_ERR_BANK_VERSION,
        Error::WindowSize | Error::ResponseTooLong => PITH_ERR_CHAT,
        Error::ReasonerEncoderMismatch => PITH_ERR_REASONER_MODEL,
        _ => PITH_ERR_OTHER,
    }
}

/// A static, NUL-terminated description of status `code` (never null).
#[no_mangle]
pub extern "C" fn pith_strerror(code: i32) -> *const c_char {
    let s: &'static [u8] = match code {
        PITH_OK => b"ok\0",
        PITH_ERR_NULL => b"null or misaligned pointer\0",
        PITH_ERR_HANDLE => b"handle not open\0",
        PITH_ERR_UTF8 => b"text is not UTF-8\0",
        PITH_ERR_BUFFER => b"output buffer too short\0",
        PITH_ERR_RANGE => b"index or selector out of range\0",
        PITH_ERR_PACKAGE_TRUNCATED => b"package truncated\0",
        PITH_ERR_PACKAGE_MAGIC => b"not a .pith package\0",
        PITH_ERR_PACKAGE_VERSION => b"unsupported package format version\0",
        PITH_ERR_PACKAGE_CHECKSUM => b"package checksum mismatch\0",
        PITH_ERR_PACKAGE_CORRUPT => b"package malformed\0",
        PITH_ERR_PACKAGE_MISSING => b"package lacks a section the model needs\0",
        PITH_ERR_PACKAGE_KIND => b"package is a model of another kind\0",
        PITH_ERR_ARENA => b"arena too small\0",
        PITH_ERR_DIMENSION => b"buffer or vector of the wrong dimension\0",
        PITH_ERR_BANK_CORRUPT => b"knowledge bank malformed\0",
        PITH_ERR_BANK_MODEL => b"knowledge bank built for another model\0",
        PITH_ERR_BANK_VERSION => b"unsupported knowledge bank version\0",
        PITH_ERR_CHAT => b"chat window or response too long\0",
        PITH_ERR_REASONER_MODEL => b"reasoner built over another encoder package\0",
        _ => b"unknown error\0",
    };
    s.as_ptr().cast()
}
