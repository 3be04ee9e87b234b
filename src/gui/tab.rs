//! The tabs of a document's central area: which one is shown is the document's choice, and the
//! banner and the metadata panel may switch it ("All findings and values", "Show in lineage").
//!
//! A leaf: it imports nothing from `gui`, so those views need not import the document that
//! lays them out.

/// The tabs of the central area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Statistics, histogram, values and heatmap of the selected tensor.
    Inspector,
    /// `__metadata__` and file facts.
    Metadata,
    /// Where the checkpoint came from.
    Lineage,
    /// The pickle scan and non-tensor values.
    Scan,
    /// The source files of a TorchScript archive.
    Code,
}
