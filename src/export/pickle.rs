//! The `data.pkl` of a state dict, opcode for opcode what `torch.save` writes for it.
//!
//! Protocol 2, the memo used as CPython's pickler uses it: every global, string and non-empty
//! tuple is memoized when first written and fetched with `BINGET` when the same object comes
//! again (the `'storage'` and `'cpu'` constants, the storage classes, a storage key named by
//! two tied tensors, and the one-character strings CPython shares). So a file ckptscope
//! writes and the same state dict saved by torch 2.15 have the same `data.pkl`, which the
//! tests check against torch's own output. The only globals are `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2` and the typed storage classes, plus, for dtypes that
//! exist only in recent torch, `_rebuild_tensor_v3`, `torch.storage.UntypedStorage` and the
//! dtype (`torch.float8_e4m3fn`), as torch itself writes them.
//!
//! Owns: pickling the plan. Must not import: `write`, `sharded`.
//!
//! `clippy::indexing_slicing` is allowed here: the tuple opcode table is indexed by a length
//! matched to 1..=3 just above.

#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;

use super::plan::{Encoding, Plan, encoding};
use crate::format::gather::row_major_strides;

/// Elements per `SETITEMS` batch (CPython's `_BATCHSIZE`).
const BATCH: usize = 1000;

#[derive(Default)]
struct Pickler {
    out: Vec<u8>,
    memo: u32,
    globals: HashMap<(&'static str, &'static str), u32>,
    strings: HashMap<String, u32>,
    keys: HashMap<usize, u32>,
}

impl Pickler {
    fn put(&mut self) -> u32 {
        let i = self.memo;
        if i < 256 {
            self.out.extend_from_slice(&[b'q', i as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
        self.memo += 1;
        i
    }

    fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend_from_slice(&[b'h', i as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    fn global(&mut self, module: &'static str, name: &'static str) {
        if let Some(&i) = self.globals.get(&(module, name)) {
            return self.get(i);
        }
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        let i = self.put();
        self.globals.insert((module, name), i);
    }

    fn unicode_raw(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A string that is its own object, except where CPython shares one: the empty string and
    /// one-character Latin-1 strings are singletons, so they are memoized by value.
    fn string(&mut self, s: &str) {
        let shared = s.chars().count() <= 1 && s.chars().all(|c| u32::from(c) < 256);
        if shared && let Some(&i) = self.strings.get(s) {
            return self.get(i);
        }
        self.unicode_raw(s);
        let i = self.put();
        if shared {
            self.strings.insert(s.to_string(), i);
        }
    }

    /// A string constant of torch's source (`'storage'`, `'cpu'`): one object, memoized once.
    fn constant(&mut self, s: &'static str) {
        let key = format!("\0const:{s}");
        if let Some(&i) = self.strings.get(&key) {
            return self.get(i);
        }
        self.unicode_raw(s);
        let i = self.put();
        self.strings.insert(key, i);
    }

    /// A storage key: `torch.save` keeps one string object per storage.
    fn storage_key(&mut self, index: usize, key: &str) {
        if let Some(&i) = self.keys.get(&index) {
            return self.get(i);
        }
        let shared = key.len() <= 1;
        if shared && let Some(&i) = self.strings.get(key) {
            self.keys.insert(index, i);
            return self.get(i);
        }
        self.unicode_raw(key);
        let i = self.put();
        self.keys.insert(index, i);
        if shared {
            self.strings.insert(key.to_string(), i);
        }
    }

    /// A non-negative int as CPython writes it in protocol 2.
    fn int(&mut self, v: u64) {
        if v <= 0xff {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if v <= 0xffff {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v <= 0x7fff_ffff {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            // LONG1: (bit_length / 8) + 1 little-endian bytes, two's complement.
            let bits = 64 - v.leading_zeros();
            let n = (bits / 8 + 1) as usize;
            let mut bytes = v.to_le_bytes().to_vec();
            bytes.resize(n.max(8), 0);
            bytes.truncate(n);
            self.out.extend_from_slice(&[0x8a, n as u8]);
            self.out.extend_from_slice(&bytes);
        }
    }

    /// A tuple of ints (`size`, `stride`).
    fn int_tuple(&mut self, items: &[u64]) {
        match items.len() {
            0 => self.out.push(b')'),
            n @ 1..=3 => {
                for &v in items {
                    self.int(v);
                }
                self.out.push([0x85, 0x86, 0x87][n - 1]);
                self.put();
            }
            _ => {
                self.out.push(b'(');
                for &v in items {
                    self.int(v);
                }
                self.out.push(b't');
                self.put();
            }
        }
    }

    /// `OrderedDict()`: a new empty one (a tensor's backward hooks).
    fn empty_ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.out.extend_from_slice(b")R");
        self.put();
    }
}

/// The pickle of the plan's state dict: an `OrderedDict` of name to tensor.
pub fn state_dict(plan: &Plan) -> Vec<u8> {
    let mut p = Pickler::default();
    p.out.extend_from_slice(&[0x80, 2]);
    p.global("collections", "OrderedDict");
    p.out.extend_from_slice(b")R");
    p.put();
    for batch in plan.tensors.chunks(BATCH) {
        if batch.len() > 1 {
            p.out.push(b'(');
        }
        for t in batch {
            p.string(&t.name);
            tensor(&mut p, plan, t);
        }
        p.out.push(if batch.len() > 1 { b'u' } else { b's' });
    }
    p.out.push(b'.');
    p.out
}

fn tensor(p: &mut Pickler, plan: &Plan, t: &super::plan::TensorPlan) {
    let Some(storage) = plan.storages.get(t.storage) else {
        return;
    };
    // The plan holds only dtypes with an encoding.
    let enc = encoding(storage.dtype).unwrap_or(Encoding::Untyped("uint8"));
    let rebuild = match enc {
        Encoding::Typed(_) => "_rebuild_tensor_v2",
        Encoding::Untyped(_) => "_rebuild_tensor_v3",
    };
    p.global("torch._utils", rebuild);
    p.out.push(b'(');
    // The persistent id: ('storage', class, key, location, numel).
    p.out.push(b'(');
    p.constant("storage");
    match enc {
        Encoding::Typed(class) => p.global("torch", class),
        Encoding::Untyped(_) => p.global("torch.storage", "UntypedStorage"),
    }
    p.storage_key(t.storage, &storage.key);
    p.constant("cpu");
    p.int(storage.byte_len() / enc.unit(storage.dtype).max(1));
    p.out.push(b't');
    p.put();
    p.out.push(b'Q');
    p.int(0);
    p.int_tuple(&t.shape);
    p.int_tuple(&row_major_strides(&t.shape));
    p.out.push(0x89); // requires_grad=False
    p.empty_ordered_dict();
    if let Encoding::Untyped(dtype) = enc {
        p.global("torch", dtype);
    }
    p.out.push(b't');
    p.put();
    p.out.push(b'R');
    p.put();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::export::plan::{StoragePlan, TensorPlan};

    #[test]
    fn one_tensor_pickles_as_torch_save_writes_it() {
        let plan = Plan {
            storages: vec![StoragePlan {
                key: "0".into(),
                dtype: DType::F32,
                source: 0,
                range: 0..24,
            }],
            tensors: vec![TensorPlan {
                name: "a".into(),
                storage: 0,
                shape: vec![2, 3],
            }],
            ..Plan::default()
        };
        // torch 2.15: torch.save(OrderedDict(a=torch.zeros(2, 3)), f), data.pkl.
        let want: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00aq\x02\
ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05\
X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x06tq\x08QK\x00K\x02K\x03\x86q\tK\x03K\x01\x86q\n\
\x89h\x00)Rq\x0btq\x0cRq\x0ds.";
        assert_eq!(state_dict(&plan), want);
    }

    #[test]
    fn big_ints_are_long1() {
        let mut p = Pickler::default();
        p.int(0x8000_0000);
        assert_eq!(p.out, [0x8a, 5, 0, 0, 0, 0x80, 0]);
        let mut p = Pickler::default();
        p.int(u64::MAX);
        assert_eq!(p.out.len(), 2 + 9);
    }
}
