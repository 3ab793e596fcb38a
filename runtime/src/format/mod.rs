//! The `.pith` package: a fixed preamble, a postcard header, a table of fixed-size section records,
//! 16-byte-aligned raw sections and a trailing CRC-32. See docs/FORMAT.md.
//!
//! [`Package::new_checked`] validates everything once; afterwards every accessor is total.
//! Nothing here copies: sections are sub-slices of the caller's bytes (flash on a device).

mod header;
pub mod int4;
pub mod layout;
#[cfg(feature = "std")]
mod write;

pub use header::*;
#[cfg(feature = "std")]
pub use write::PackageWriter;

use crate::error::{Error, Result};
use crate::le::{u16_at, u32_at};

/// First four bytes of every package.
pub const MAGIC: [u8; 4] = *b"PITH";
/// The format version this runtime reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the fixed preamble before the postcard header.
pub const PREAMBLE_LEN: usize = 24;
/// Size of one section record in the section table.
pub const SECTION_RECORD_LEN: usize = 24;
/// Every section starts at a multiple of this (so SIMD loads and DMA from flash stay aligned).
pub const SECTION_ALIGN: usize = 16;
/// The CRC used for the trailing checksum (CRC-32/ISO-HDLC, the zlib one).
pub const CHECKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Element type of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DType {
    /// Raw bytes (vocabulary, text).
    U8 = 0,
    /// Signed 8-bit (weights, embedding tables).
    I8 = 1,
    /// Little-endian i32 (biases, requantization multipliers and shifts).
    I32 = 2,
    /// Little-endian u16 (lookup tables).
    U16 = 3,
    /// Little-endian i64 (LayerNorm gains and offsets in fixed point).
    I64 = 4,
}

impl DType {
    fn from_u8(v: u8) -> Option<DType> {
        match v {
            0 => Some(DType::U8),
            1 => Some(DType::I8),
            2 => Some(DType::I32),
            3 => Some(DType::U16),
            4 => Some(DType::I64),
            _ => None,
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::U16 => 2,
            DType::I32 => 4,
            DType::I64 => 8,
        }
    }
}

/// One entry of the section table, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionInfo {
    /// What the section holds ([`SectionKind`] as u16).
    pub kind: u16,
    /// Layer index for per-layer sections, 0 otherwise.
    pub layer: u16,
    /// Element type.
    pub dtype: DType,
    /// Offset from the start of the package.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
    /// Rows (1 for vectors).
    pub rows: u32,
    /// Columns (elements per row).
    pub cols: u32,
}

/// A validated view of a `.pith` package. Cheap to copy; borrows the bytes.
#[derive(Clone)]
pub struct Package<'a> {
    bytes: &'a [u8],
    header: Header,
    table: &'a [u8],
}

/// Rounds `n` up to the section alignment.
pub const fn align_up(n: usize) -> usize {
    n.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

impl<'a> Package<'a> {
    /// Validates magic, version, length, checksum, header and every section's bounds and size.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self> {
        Self::check(bytes, true)
    }

    /// Like [`Package::new_checked`] but skips the CRC (for boot paths that verified it once already).
    pub fn new_checked_without_crc(bytes: &'a [u8]) -> Result<Self> {
        Self::check(bytes, false)
    }

    fn check(bytes: &'a [u8], verify_crc: bool) -> Result<Self> {
        if bytes.len() < PREAMBLE_LEN + 4 {
            return Err(Error::PackageTruncated);
        }
        if bytes[0..4] != MAGIC {
            return Err(Error::PackageBadMagic);
        }
        let version = u16_at(bytes, 4).ok_or(Error::PackageTruncated)?;
        if version != FORMAT_VERSION {
            return Err(Error::PackageUnsupportedVersion(version));
        }
        let header_len = u32_at(bytes, 8).ok_or(Error::PackageTruncated)? as usize;
        let count = u32_at(bytes, 12).ok_or(Error::PackageTruncated)? as usize;
        let total = u32_at(bytes, 16).ok_or(Error::PackageTruncated)? as usize;
        if total > bytes.len() {
            return Err(Error::PackageTruncated);
        }
        // Trailing bytes beyond `total` are allowed: flash images are often padded.
        let bytes = &bytes[..total];
        let body_end = total.checked_sub(4).ok_or(Error::PackageTruncated)?;
        if verify_crc {
            let stored = u32_at(bytes, body_end).ok_or(Error::PackageTruncated)?;
            if CHECKSUM.checksum(&bytes[..body_end]) != stored {
                return Err(Error::PackageBadChecksum);
            }
        }
        let header_end = PREAMBLE_LEN
            .checked_add(header_len)
            .ok_or(Error::PackageTruncated)?;
        let header_bytes = bytes
            .get(PREAMBLE_LEN..header_end)
            .ok_or(Error::PackageTruncated)?;
        let header: Header =
            postcard::from_bytes(header_bytes).map_err(|_| Error::PackageBadHeader)?;
        let table_start = align_up(header_end);
        let table_len = count
            .checked_mul(SECTION_RECORD_LEN)
            .ok_or(Error::PackageBadSection)?;
        let table_end = table_start
            .checked_add(table_len)
            .ok_or(Error::PackageBadSection)?;
        if table_end > body_end {
            return Err(Error::PackageTruncated);
        }
        let table = &bytes[table_start..table_end];
        let pkg = Package {
            bytes,
            header,
            table,
        };
        for i in 0..count {
            let s = pkg.record(i).ok_or(Error::PackageBadSection)?;
            let start = s.offset as usize;
            let end = start
                .checked_add(s.len as usize)
                .ok_or(Error::PackageBadSection)?;
            if start < table_end || end > body_end || !start.is_multiple_of(SECTION_ALIGN) {
                return Err(Error::PackageBadSection);
            }
            let elems = (s.rows as usize)
                .checked_mul(s.cols as usize)
                .and_then(|n| n.checked_mul(s.dtype.size()))
                .ok_or(Error::PackageBadSection)?;
            if elems != s.len as usize {
                return Err(Error::PackageBadSection);
            }
        }
        pkg.header.validate()?;
        Ok(pkg)
    }

    fn record(&self, i: usize) -> Option<SectionInfo> {
        let r = self
            .table
            .get(i * SECTION_RECORD_LEN..(i + 1) * SECTION_RECORD_LEN)?;
        Some(SectionInfo {
            kind: u16_at(r, 0)?,
            layer: u16_at(r, 2)?,
            dtype: DType::from_u8(r[4])?,
            offset: u32_at(r, 8)?,
            len: u32_at(r, 12)?,
            rows: u32_at(r, 16)?,
            cols: u32_at(r, 20)?,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole package (up to and including its checksum).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of sections.
    pub fn section_count(&self) -> usize {
        self.table.len() / SECTION_RECORD_LEN
    }

    /// The `i`th section record, if it exists.
    pub fn section_info(&self, i: usize) -> Option<SectionInfo> {
        self.record(i)
    }

    /// Finds a section by kind and layer.
    pub fn find(&self, kind: SectionKind, layer: u16) -> Option<(SectionInfo, &'a [u8])> {
        (0..self.section_count()).find_map(|i| {
            let s = self.record(i)?;
            if s.kind == kind as u16 && s.layer == layer {
                let data = self
                    .bytes
                    .get(s.offset as usize..(s.offset + s.len) as usize)?;
                Some((s, data))
            } else {
                None
            }
        })
    }

    /// Finds a section and checks its dtype and shape; `rows`/`cols` of 0 mean "any".
    pub fn tensor(
        &self,
        kind: SectionKind,
        layer: u16,
        dtype: DType,
        rows: usize,
        cols: usize,
    ) -> Result<&'a [u8]> {
        let (s, data) = self.find(kind, layer).ok_or(Error::PackageMissingSection)?;
        let rows_ok = rows == 0 || s.rows as usize == rows;
        let cols_ok = cols == 0 || s.cols as usize == cols;
        if s.dtype != dtype || !rows_ok || !cols_ok {
            return Err(Error::PackageBadSection);
        }
        Ok(data)
    }
}
