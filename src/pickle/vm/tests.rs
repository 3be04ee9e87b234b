//! Tests of the pickle machine.

use super::scalars::*;
use super::*;

fn run_with(bytes: &[u8], limits: PickleLimits) -> (Program, Vec<Event>) {
    let mut events = Vec::new();
    let p = run(bytes, 0, &mut Budget::new(limits, None), &mut events);
    (p, events)
}

fn run_all(bytes: &[u8]) -> Program {
    run_with(bytes, PickleLimits::DEFAULT).0
}

fn framed(framing: Framing, bytes: &[u8]) -> (Program, Vec<Event>) {
    let mut events = Vec::new();
    let p = run_framed(
        bytes,
        0,
        framing,
        &mut Budget::new(PickleLimits::DEFAULT, None),
        &mut events,
    );
    (p, events)
}

/// `FRAME` holding `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x95];
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// Each expectation below is what CPython 3.11 does with the same bytes: `pickle.loads(b)`
// for ReadThrough, `pickle.Unpickler(io.BytesIO(b)).load()` for FileNoPeek.

#[test]
fn binunicode_past_its_frame_reads_through_in_memory_and_from_after_the_frame_over_a_file() {
    let b = cat(&[b"\x80\x04", &frame(b"X\x0a\x00\x00\x00abc"), b"defghij."]);
    let (p, _) = framed(Framing::ReadThrough, &b);
    assert_eq!(p.arena.str(p.root.unwrap()), Some("abcdefghij"));
    let s = p.straddle.unwrap();
    assert_eq!((s.offset, s.op, s.frame_end), (11, "BINUNICODE", 19));
    // Over a file the 10 bytes come from after the frame: "defghij." and then nothing.
    let (p, _) = framed(Framing::FileNoPeek, &b);
    assert!(
        matches!(p.error, Some(PickleError::Truncated { .. })),
        "{:?}",
        p.error
    );
    assert!(p.straddle.is_some());

    let b = cat(&[b"\x80\x04", &frame(b"X\x04\x00\x00\x00ab"), b"WXYZ."]);
    let (p, _) = framed(Framing::FileNoPeek, &b);
    assert_eq!(p.arena.str(p.root.unwrap()), Some("WXYZ"));
    let (p, _) = framed(Framing::ReadThrough, &b);
    assert!(matches!(
        p.error,
        Some(PickleError::UnknownOpcode { byte: b'Y', .. })
    ));
}

#[test]
fn bytes_payloads_past_their_frame_read_through_in_both_readers() {
    let b = cat(&[b"\x80\x04", &frame(b"B\x0a\x00\x00\x00abc"), b"defghij."]);
    for framing in [Framing::ReadThrough, Framing::FileNoPeek] {
        let (p, _) = framed(framing, &b);
        assert!(
            matches!(p.arena.node(p.root.unwrap()), Some(Node::Bytes(v)) if v == b"abcdefghij")
        );
        // pickle.py still refuses it: a divergence all the same.
        assert!(p.straddle.is_some());
    }
}

#[test]
fn lines_and_fixed_operands_past_their_frame_come_from_after_it_over_a_file() {
    let b = cat(&[b"\x80\x02", &frame(b"cxx"), b"builtins\nlen\n."]);
    let (_, events) = framed(Framing::ReadThrough, &b);
    let (p, events_file) = framed(Framing::FileNoPeek, &b);
    assert!(p.error.is_none(), "{:?}", p.error);
    let global = |p: &Program, e: &[Event]| match e.first() {
        Some(Event::Global { node, .. }) => match p.arena.get(*node) {
            Some(Node::Global { module, name }) => format!("{module}.{name}"),
            _ => String::new(),
        },
        _ => String::new(),
    };
    assert_eq!(global(&p, &events_file), "builtins.len");
    let (p2, _) = framed(Framing::ReadThrough, &b);
    assert_eq!(global(&p2, &events), "xxbuiltins.len");

    let b = cat(&[b"\x80\x02", &frame(b"J\x01\x02"), b"\x03\x04\x05\x06."]);
    let (p, _) = framed(Framing::FileNoPeek, &b);
    assert_eq!(p.root, Some(Val::Int(100_992_003)));
}

#[test]
fn a_frame_inside_a_frame_keeps_the_outer_buffer_over_a_file() {
    let b = cat(&[
        b"\x80\x04",
        &frame(&cat(&[&frame(b"N"), b"X\x02\x00\x00\x00a"])),
        b"b.",
    ]);
    let (p, _) = framed(Framing::ReadThrough, &b);
    assert_eq!(p.arena.str(p.root.unwrap()), Some("ab"));
    assert_eq!(p.straddle.unwrap().op, "FRAME");
    let (p, _) = framed(Framing::FileNoPeek, &b);
    assert!(p.error.is_some());
}

#[test]
fn frames_as_picklers_write_them_are_read_alike_and_no_straddle() {
    let b = cat(&[b"\x80\x04", &frame(b"]\x94(\x8c\x01a\x94K\x01e.")]);
    for framing in [Framing::ReadThrough, Framing::FileNoPeek] {
        let (p, _) = framed(framing, &b);
        assert!(p.error.is_none(), "{framing:?}: {:?}", p.error);
        assert_eq!(p.straddle, None);
        assert_eq!(p.arena.seq(p.root.unwrap()).map(<[Val]>::len), Some(2));
    }
}

#[test]
fn protocol_0_text_values() {
    let p = run_all(
        b"(lp0\nI1\naI00\naL123456789012345678901234567890L\naF1.5\naS'a\\nb'\naVcaf\\u00e9\na.",
    );
    assert!(p.error.is_none(), "{:?}", p.error);
    let items = p.arena.seq(p.root.unwrap()).unwrap().to_vec();
    assert_eq!(items[0], Val::Int(1));
    assert_eq!(items[1], Val::Bool(false));
    assert!(
        matches!(p.arena.node(items[2]), Some(Node::BigInt(s)) if s == "123456789012345678901234567890")
    );
    assert_eq!(items[3], Val::Float(1.5));
    assert_eq!(p.arena.str(items[4]), Some("a\nb"));
    assert_eq!(p.arena.str(items[5]), Some("café"));
}

#[test]
fn memoize_indexes_by_memo_size_like_cpython() {
    // PUT slot 5, then MEMOIZE: CPython stores at len(memo) == 1, not at 6.
    let p = run_all(b"\x80\x04\x8c\x01a\x94\x8c\x01b\x94\x8c\x01cq\x05\x8c\x01d\x94h\x03.");
    assert!(p.error.is_none(), "{:?}", p.error);
    assert_eq!(p.arena.str(p.root.unwrap()), Some("d"));
}

#[test]
fn long1_is_twos_complement() {
    let p = run_all(b"\x80\x02\x8a\x02\xff\x7f.");
    assert_eq!(p.root, Some(Val::Int(0x7fff)));
    let p = run_all(b"\x80\x02\x8a\x01\xff.");
    assert_eq!(p.root, Some(Val::Int(-1)));
    let p = run_all(b"\x80\x02\x8a\x00.");
    assert_eq!(p.root, Some(Val::Int(0)));
}

#[test]
fn stack_fence_at_mark_is_respected() {
    // REDUCE right after MARK reaches below the fence: CPython raises.
    let (p, events) = run_with(b"cos\nsystem\n(R.", PickleLimits::DEFAULT);
    assert!(
        matches!(p.error, Some(PickleError::StackUnderflow { .. })),
        "{:?}",
        p.error
    );
    // The global was still seen.
    assert!(matches!(events[0], Event::Global { .. }));
}

#[test]
fn pop_on_empty_frame_pops_the_mark() {
    let p = run_all(b"N(0.");
    assert_eq!(p.root, Some(Val::None));
    assert!(p.error.is_none());
}

#[test]
fn truncation_and_bad_lengths_are_errors_before_allocation() {
    let p = run_all(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f");
    assert!(matches!(
        p.error,
        Some(PickleError::Truncated {
            op: "BINBYTES8",
            ..
        })
    ));
    let p = run_all(b"\x80\x02X\x10\x00\x00\x00abc");
    assert!(matches!(
        p.error,
        Some(PickleError::Truncated {
            op: "BINUNICODE",
            ..
        })
    ));
    let p = run_all(b"\x80\x02");
    assert!(matches!(p.error, Some(PickleError::Truncated { .. })));
}

#[test]
fn setitem_replaces_equal_keys() {
    let p = run_all(b"}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00aK\x02u.");
    match p.arena.node(p.root.unwrap()) {
        Some(Node::Dict(entries)) => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].1, Val::Int(2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_stop_bombs() {
    let limits = PickleLimits {
        max_ops: 1000,
        ..PickleLimits::DEFAULT
    };
    let bomb = vec![b'N'; 5000];
    let (p, _) = run_with(&bomb, limits);
    assert!(matches!(
        p.error,
        Some(PickleError::Limit { name: "ops", .. })
    ));
    let marks = vec![b'('; 20_000];
    let p = run_all(&marks);
    assert!(matches!(
        p.error,
        Some(PickleError::Limit { name: "marks", .. })
    ));
    // Values stored in containers count: `]` then `N a` many times.
    let mut appends = b"]".to_vec();
    appends.extend(b"Na".repeat(3000));
    let (p, _) = run_with(
        &appends,
        PickleLimits {
            max_items: 1000,
            ..PickleLimits::DEFAULT
        },
    );
    assert!(matches!(
        p.error,
        Some(PickleError::Limit { name: "items", .. })
    ));
}

#[test]
fn one_budget_spans_streams() {
    let mut budget = Budget::new(
        PickleLimits {
            max_ops: 10,
            ..PickleLimits::DEFAULT
        },
        None,
    );
    let mut events = Vec::new();
    let first = run(b"NNNN000.", 0, &mut budget, &mut events);
    assert!(first.error.is_none());
    let second = run(b"NNNN000.", 0, &mut budget, &mut events);
    assert!(matches!(
        second.error,
        Some(PickleError::Limit { name: "ops", .. })
    ));
}

#[test]
fn dict_keys_are_indexed_not_rescanned() {
    // 80,000 single SETITEMs on one dict: each key once, a repeat replaces.
    let mut b = b"}".to_vec();
    for i in 0..80_000u32 {
        b.push(b'J');
        b.extend(i.to_le_bytes());
        b.extend(b"Ns");
    }
    b.extend(b"J\x05\x00\x00\x00K\x07s.");
    let p = run_all(&b);
    assert!(p.error.is_none(), "{:?}", p.error);
    match p.arena.node(p.root.unwrap()) {
        Some(Node::Dict(entries)) => {
            assert_eq!(entries.len(), 80_000);
            assert_eq!(entries[5], (Val::Int(5), Val::Int(7)));
        }
        other => panic!("{other:?}"),
    }
    // True and 1 are one key, b"a" and "a" are two.
    let p = run_all(b"}(K\x01K\x01\x88K\x02C\x01aK\x03X\x01\x00\x00\x00aK\x04u.");
    match p.arena.node(p.root.unwrap()) {
        Some(Node::Dict(entries)) => {
            assert_eq!(entries.len(), 3);
            assert_eq!(entries[0].1, Val::Int(2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn python2_string_escapes() {
    assert_eq!(
        unquote_python2_string(b"'a\\x41\\101\\''").unwrap(),
        b"aAA'"
    );
    assert_eq!(unquote_python2_string(b"\"x\""), Some(b"x".to_vec()));
    assert_eq!(unquote_python2_string(b"'x"), None);
    assert_eq!(unquote_python2_string(b"'"), None);
}
