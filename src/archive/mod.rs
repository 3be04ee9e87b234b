//! Archive containers read straight from a byte slice (a memory map): zip and tar.
//!
//! Owns: the zip central directory, local headers, CRCs and data ranges; tar member listing.
//! Must not import: any other ckptscope module but `error` (a leaf under `pickle` and `format`,
//! which both read archives).

pub mod tar;
pub mod zip;
