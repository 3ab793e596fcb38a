//! One flat error enum for the whole runtime: every variant is phase + cause.

use core::fmt;

/// Everything the runtime can refuse. No runtime path panics on bad input: it returns one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The package is shorter than its fixed preamble or than the length it declares.
    PackageTruncated,
    /// The package does not start with the `PITH` magic.
    PackageBadMagic,
    /// The package's format version is not one this runtime reads.
    PackageUnsupportedVersion(u16),
    /// The CRC-32 at the end of the package does not match its contents.
    PackageBadChecksum,
    /// The postcard header could not be decoded.
    PackageBadHeader,
    /// A section points outside the package, overlaps the checksum or has a size that disagrees with its shape.
    PackageBadSection,
    /// A section the model needs is missing.
    PackageMissingSection,
    /// The model configuration is inconsistent (zero sizes, heads not dividing hidden, and so on).
    PackageBadConfig,
    /// The vocabulary section is malformed.
    VocabCorrupt,
    /// The caller's arena is smaller than [`crate::Model::arena_words`] asks for.
    ArenaTooSmall,
    /// The output buffer does not have the model's dimension.
    OutputSizeMismatch,
    /// The knowledge bank is truncated or malformed.
    BankCorrupt,
    /// The knowledge bank was built for a model of another dimension.
    BankDimensionMismatch,
    /// The knowledge bank's format version is not one this runtime reads.
    BankUnsupportedVersion(u16),
    /// The knowledge bank was embedded by another model package (its recorded tag differs).
    BankModelMismatch,
    /// A reasoner window is empty or longer than the package's window.
    WindowSize,
    /// The package is a model of another kind than the caller loads (an encoder given to the
    /// reasoner, or the other way round).
    PackageWrongKind,
    /// A response-bank sentence is longer than `chat`'s text buffer, so it cannot be embedded
    /// whole into the conversation.
    ResponseTooLong,
    /// The reasoner was calibrated on another encoder package's turn vectors (its recorded tag
    /// differs).
    ReasonerEncoderMismatch,
}

/// Result alias used across the runtime.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PackageTruncated => f.write_str("package truncated"),
            Error::PackageBadMagic => f.write_str("not a .pith package (bad magic)"),
            Error::PackageUnsupportedVersion(v) => {
                write!(f, "unsupported package format version {v}")
            }
            Error::PackageBadChecksum => f.write_str("package checksum mismatch (corrupted)"),
            Error::PackageBadHeader => f.write_str("package header does not decode"),
            Error::PackageBadSection => f.write_str("package section out of bounds or mis-sized"),
            Error::PackageMissingSection => f.write_str("package lacks a section the model needs"),
            Error::PackageBadConfig => f.write_str("package model configuration is inconsistent"),
            Error::VocabCorrupt => f.write_str("vocabulary section is corrupt"),
            Error::ArenaTooSmall => {
                f.write_str("arena too small for this model and sequence length")
            }
            Error::OutputSizeMismatch => {
                f.write_str("output buffer does not match the model dimension")
            }
            Error::BankCorrupt => f.write_str("knowledge bank is corrupt"),
            Error::BankDimensionMismatch => {
                f.write_str("knowledge bank dimension differs from the model's")
            }
            Error::BankUnsupportedVersion(v) => {
                write!(f, "unsupported knowledge bank format version {v}")
            }
            Error::BankModelMismatch => {
                f.write_str("knowledge bank was built with another model package")
            }
            Error::WindowSize => f.write_str("reasoner window is empty or too long"),
            Error::PackageWrongKind => {
                f.write_str("package holds another kind of model (encoder vs reasoner)")
            }
            Error::ResponseTooLong => f.write_str("response too long to keep in the conversation"),
            Error::ReasonerEncoderMismatch => {
                f.write_str("reasoner was built over another encoder package")
            }
        }
    }
}

// core's Error trait: `?` converts runtime errors into `Box<dyn Error>` and the like with or
// without std.
impl core::error::Error for Error {}
