//! Archive containers read straight from a byte slice (a memory map): zip and tar; and zip
//! archives written the way torch writes them.
//!
//! Owns: the zip central directory, local headers, CRCs and data ranges; tar member listing;
//! the torch-style zip writer.
//! Must not import: any other ckptscope module but `error` (a leaf under `pickle` and `format`,
//! which both read archives).

pub mod tar;
pub mod zip;
pub mod zip_write;
