//! The pairs of a comparison: which tensor of A goes with which of B (by equal names, or by a
//! [`Mapping`]'s names), and the views that walk both in the same order.
//!
//! Owns: [`Pair`], [`Unpermute`] and [`pairs`]. Must not import: `diff`.

use crate::analysis::namemap::{Mapping, Which, unpermuted_view};
use crate::analysis::slice::View;
use crate::format::{Checkpoint, TensorEntry};

/// llama.cpp's permutation of the query/key rows, undone on one side of a pair
/// ([`unpermuted_view`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unpermute {
    /// The side read through the view (the GGUF one).
    pub side: Which,
    /// Heads the rows were permuted over.
    pub heads: u64,
}

/// Two tensors to compare (either may be missing) and how their elements line up.
#[derive(Clone, Copy, Debug)]
pub struct Pair<'c> {
    /// The tensor in A.
    pub a: Option<&'c TensorEntry>,
    /// The tensor in B.
    pub b: Option<&'c TensorEntry>,
    /// The reordering of one side, if any.
    pub unpermute: Option<Unpermute>,
}

impl<'c> Pair<'c> {
    /// The views that walk both sides in the same order.
    pub(crate) fn views(&self, ta: &TensorEntry, tb: &TensorEntry) -> Result<(View, View), String> {
        let view = |t: &TensorEntry, side: Which| match self.unpermute {
            Some(u) if u.side == side => unpermuted_view(t, u.heads),
            _ => Ok(View::of(t)),
        };
        Ok((
            view(ta, Which::A)?.simplified(),
            view(tb, Which::B)?.simplified(),
        ))
    }
}

/// The pairs a comparison makes: by the mapping's names where it has one (undoing llama.cpp's
/// Q/K permutation on the GGUF side), by equal names otherwise.
pub fn pairs<'c>(a: &'c Checkpoint, b: &'c Checkpoint, mapping: Option<&Mapping>) -> Vec<Pair<'c>> {
    let partners = mapping.map(|m| m.partners(a, b)).unwrap_or_default();
    let unpermute = |name_a: &str, name_b: &str| {
        let m = mapping?;
        let gguf_name = match m.gguf {
            Which::A => name_a,
            Which::B => name_b,
        };
        m.permuted_heads(gguf_name).map(|heads| Unpermute {
            side: m.gguf,
            heads,
        })
    };
    let mut out = Vec::new();
    for t in &a.tensors {
        let pair = match partners.b_of_a.get(&t.name) {
            Some(nb) => Pair {
                a: Some(t),
                b: b.tensor(nb),
                unpermute: unpermute(&t.name, nb),
            },
            // A name the mapping pairs elsewhere is not also paired with a namesake.
            None if partners.a_of_b.contains_key(&t.name) => Pair {
                a: Some(t),
                b: None,
                unpermute: None,
            },
            None => Pair {
                a: Some(t),
                b: b.tensor(&t.name),
                unpermute: None,
            },
        };
        out.push(pair);
    }
    for t in &b.tensors {
        let paired = match partners.a_of_b.get(&t.name) {
            Some(na) => a.tensor(na).is_some(),
            None => !partners.b_of_a.contains_key(&t.name) && a.tensor(&t.name).is_some(),
        };
        if !paired {
            out.push(Pair {
                a: None,
                b: Some(t),
                unpermute: None,
            });
        }
    }
    out
}
