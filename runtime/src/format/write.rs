//! Writing packages (host only).

use std::vec::Vec;

use super::*;

/// Builds a `.pith` package in memory: add sections, then [`PackageWriter::finish`].
pub struct PackageWriter {
    header: Header,
    sections: Vec<(SectionKind, u16, DType, u32, u32, Vec<u8>)>,
}

impl PackageWriter {
    /// Starts a package with this header.
    pub fn new(header: Header) -> Self {
        PackageWriter {
            header,
            sections: Vec::new(),
        }
    }

    /// Adds a raw section; `bytes.len()` must equal `rows * cols * dtype.size()`.
    pub fn add(
        &mut self,
        kind: SectionKind,
        layer: u16,
        dtype: DType,
        rows: usize,
        cols: usize,
        bytes: Vec<u8>,
    ) {
        assert_eq!(
            bytes.len(),
            rows * cols * dtype.size(),
            "section {kind:?} size mismatch"
        );
        self.sections
            .push((kind, layer, dtype, rows as u32, cols as u32, bytes));
    }

    /// Adds a 4-bit tensor of `cols` values a row (`cols` even, values in −7..=7), packed two a
    /// byte as [`super::int4`] reads them: a u8 section of `cols / 2` columns.
    pub fn add_i4(&mut self, kind: SectionKind, layer: u16, rows: usize, cols: usize, v: &[i8]) {
        assert!(
            cols.is_multiple_of(2),
            "section {kind:?}: a 4-bit row needs an even width"
        );
        assert_eq!(v.len(), rows * cols, "section {kind:?} size mismatch");
        let packed = v.chunks_exact(2).map(|p| super::int4::pack(p[0], p[1]));
        self.add(kind, layer, DType::U8, rows, cols / 2, packed.collect());
    }

    /// Adds an i8 tensor.
    pub fn add_i8(&mut self, kind: SectionKind, layer: u16, rows: usize, cols: usize, v: &[i8]) {
        self.add(
            kind,
            layer,
            DType::I8,
            rows,
            cols,
            v.iter().map(|&x| x as u8).collect(),
        );
    }

    /// Adds an i32 tensor (little-endian).
    pub fn add_i32(&mut self, kind: SectionKind, layer: u16, rows: usize, cols: usize, v: &[i32]) {
        self.add(
            kind,
            layer,
            DType::I32,
            rows,
            cols,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
    }

    /// Adds an i64 tensor (little-endian).
    pub fn add_i64(&mut self, kind: SectionKind, layer: u16, rows: usize, cols: usize, v: &[i64]) {
        self.add(
            kind,
            layer,
            DType::I64,
            rows,
            cols,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
    }

    /// Adds a u16 tensor (little-endian).
    pub fn add_u16(&mut self, kind: SectionKind, layer: u16, rows: usize, cols: usize, v: &[u16]) {
        self.add(
            kind,
            layer,
            DType::U16,
            rows,
            cols,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
    }

    /// Lays the package out and appends the checksum.
    pub fn finish(self) -> Vec<u8> {
        let header = postcard::to_allocvec(&self.header).expect("header serializes");
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // total length, patched below
        out.extend_from_slice(&0u32.to_le_bytes()); // reserved
        out.extend_from_slice(&header);
        out.resize(align_up(out.len()), 0);
        let table_at = out.len();
        out.resize(table_at + self.sections.len() * SECTION_RECORD_LEN, 0);
        out.resize(align_up(out.len()), 0);
        for (i, (kind, layer, dtype, rows, cols, bytes)) in self.sections.iter().enumerate() {
            let offset = out.len() as u32;
            out.extend_from_slice(bytes);
            out.resize(align_up(out.len()), 0);
            let r = &mut out
                [table_at + i * SECTION_RECORD_LEN..table_at + (i + 1) * SECTION_RECORD_LEN];
            r[0..2].copy_from_slice(&(*kind as u16).to_le_bytes());
            r[2..4].copy_from_slice(&layer.to_le_bytes());
            r[4] = *dtype as u8;
            r[8..12].copy_from_slice(&offset.to_le_bytes());
            r[12..16].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            r[16..20].copy_from_slice(&rows.to_le_bytes());
            r[20..24].copy_from_slice(&cols.to_le_bytes());
        }
        let total = out.len() + 4;
        out[16..20].copy_from_slice(&(total as u32).to_le_bytes());
        let crc = CHECKSUM.checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}
