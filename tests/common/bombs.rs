//! Hostile pickles at the sizes that once made ckptscope scan for minutes or use gigabytes,
//! built the same way by the tests (`tests/library/hostile.rs`) and the benchmark (`benches/scan.rs`).
#![allow(dead_code)]

/// `}` then `J<i> N s` (one SETITEM per key) `n` times: a dict built one item at a time. A key
/// index rebuilt on every item made this quadratic (80,000 items: 238 s).
pub fn setitem_bomb(n: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(7 * n as usize + 2);
    b.push(b'}');
    for i in 0..n {
        b.push(b'J');
        b.extend_from_slice(&i.to_le_bytes());
        b.extend_from_slice(b"Ns");
    }
    b.push(b'.');
    b
}

/// `]` then `N b` (BUILD with a None state on a list) `n` times: one event per two bytes. One
/// recorded event and one finding each made 20,000,000 of them take 8.8 GB.
pub fn build_bomb(n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 * n + 2);
    b.push(b']');
    for _ in 0..n {
        b.extend_from_slice(b"Nb");
    }
    b.push(b'.');
    b
}

/// The `data.pkl` of a `torch.save` state dict of `n` one-dimensional F32 tensors of
/// `elements` values, each on its own storage `data/<i>` (protocol 2, globals memoized as torch
/// writes them).
pub fn state_dict_pickle(n: usize, elements: u32) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
    let text = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    };
    for i in 0..n {
        text(&mut p, &format!("layers.{i}.weight"));
        if i == 0 {
            p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02");
        } else {
            p.extend_from_slice(b"h\x02");
        }
        p.extend_from_slice(b"((X\x07\x00\x00\x00storage");
        if i == 0 {
            p.extend_from_slice(b"ctorch\nFloatStorage\nq\x03");
        } else {
            p.extend_from_slice(b"h\x03");
        }
        text(&mut p, &i.to_string());
        p.extend_from_slice(b"X\x03\x00\x00\x00cpuJ");
        p.extend_from_slice(&elements.to_le_bytes());
        p.extend_from_slice(b"tQK\x00J");
        p.extend_from_slice(&elements.to_le_bytes());
        p.extend_from_slice(b"\x85K\x01\x85\x89h\x00)RtR");
    }
    p.extend_from_slice(b"u.");
    p
}
