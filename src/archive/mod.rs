//! Archive containers read straight from a byte slice (a memory map): zip, tar, and the
//! protobuf wire format ONNX models are written in; and zip archives written the way torch
//! writes them; `.tar.gz` archives of a package.
//!
//! Owns: the zip central directory, local headers, CRCs, data ranges and bounded inflation; tar
//! member listing; protobuf fields with their offsets; the torch-style zip writer; the ustar + gzip writer.
//! Must not import: anything but `error` (a leaf under `pickle` and `format`,
//! which both read archives).

pub mod protobuf;
pub mod tar;
pub mod tar_write;
pub mod zip;
pub mod zip_write;
