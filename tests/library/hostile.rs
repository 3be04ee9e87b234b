//! Files built to make a scanner work without end, use gigabytes or give up quietly. Each must
//! end with a true answer: the same tensors and verdict as a small honest file, or a verdict
//! that is never `safe` with a message naming the limit that stopped the analysis.
//! (How long each takes is measured by `cargo bench --bench scan`, not here.)

use crate::common;

use std::sync::Arc;

use ckptscope::Limits;
use ckptscope::format::{OpenOptions, PickleOptions, open_with};
use ckptscope::pickle::policy::{Policy, Risk, Verdict};
use ckptscope::pickle::{Analysis, analyze};
use ckptscope::progress::Progress;
use ckptscope::scan::{ScanResult, scan_file};
use common::bombs::{build_bomb, setitem_bomb, state_dict_pickle};
use common::{Pickle, Zip, write_temp};

fn scan_with(name: &str, bytes: &[u8], limits: &Limits) -> ScanResult {
    let (_dir, path) = write_temp(name, bytes);
    scan_file(&path, &Policy::default(), limits).unwrap()
}

fn analyze_with(bytes: &[u8], format: ckptscope::Format, limits: &Limits) -> Analysis {
    analyze(bytes, format, &Policy::default(), limits, None)
}

/// Asserts the analysis was stopped by limit `name` and says so in a non-safe finding.
fn assert_stopped_by(
    findings: &[ckptscope::pickle::policy::Finding],
    verdict: Verdict,
    name: &str,
) {
    assert!(verdict >= Verdict::Suspicious, "{verdict:?}: {findings:#?}");
    let needle = format!("--limit {name}=N");
    assert!(
        findings
            .iter()
            .any(|f| f.risk >= Risk::Suspicious && f.reason.contains(&needle)),
        "no finding names `{needle}`: {findings:#?}"
    );
}

fn torch_zip(n: usize, elements: u32) -> Vec<u8> {
    let mut zip = Zip::new()
        .add("archive/data.pkl", &state_dict_pickle(n, elements))
        .add("archive/byteorder", b"little");
    for i in 0..n {
        zip = zip.add(
            &format!("archive/data/{i}"),
            &vec![0u8; 4 * elements as usize],
        );
    }
    zip.add("archive/version", b"3\n").bytes()
}

#[test]
fn eighty_thousand_setitems_build_one_dict() {
    let bytes = setitem_bomb(80_000);
    let a = analyze_with(&bytes, ckptscope::Format::Pickle, &Limits::DEFAULT);
    assert_eq!(a.verdict, Verdict::Safe, "{:#?}", a.findings);
    assert!(a.stopped.is_none());
    let program = a.object.unwrap();
    match program.arena.node(program.root.unwrap()) {
        Some(ckptscope::pickle::value::Node::Dict(entries)) => assert_eq!(entries.len(), 80_000),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sixteen_thousand_storages_are_all_listed() {
    let bytes = torch_zip(16_000, 1);
    let (_dir, path) = write_temp("many.pt", &bytes);
    let r = scan_file(&path, &Policy::default(), &Limits::DEFAULT).unwrap();
    assert_eq!(r.verdict, Verdict::Safe, "{:#?}", r.findings);
    let ckpt = ckptscope::format::open(&path).unwrap();
    assert_eq!(ckpt.tensors.len(), 16_000);
    assert_eq!(
        ckpt.tensor("layers.15999.weight")
            .unwrap()
            .storage
            .as_deref(),
        Some("15999")
    );
}

#[test]
fn millions_of_builds_make_one_finding_with_a_count() {
    let bytes = build_bomb(2_000_000);
    let a = analyze_with(&bytes, ckptscope::Format::Pickle, &Limits::DEFAULT);
    assert_eq!(a.verdict, Verdict::Suspicious);
    assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
    assert_eq!(a.findings[0].count, 2_000_000);
    assert_eq!(a.findings[0].opcode, Some("BUILD"));
}

#[test]
fn the_opcode_budget_stops_a_harmless_looking_file() {
    let mut bytes = vec![b'N'; 5000];
    bytes.push(b'.');
    let mut limits = Limits::DEFAULT;
    limits.apply("ops=1000").unwrap();
    let r = scan_with("nones.pkl", &bytes, &limits);
    assert_stopped_by(&r.findings, r.verdict, "ops");
}

#[test]
fn the_budget_is_for_the_whole_file_not_each_stream() {
    // 40 concatenated streams of 100 opcodes each: under a per-stream limit of 1,000 each
    // would pass; the file's budget of 1,000 is spent by the tenth.
    let mut one = vec![b'N'; 99];
    one.extend_from_slice(&[b'0'; 98]);
    one.push(b'.');
    let bytes = one.repeat(40);
    let mut limits = Limits::DEFAULT;
    limits.apply("ops=1000").unwrap();
    let a = analyze_with(&bytes, ckptscope::Format::Pickle, &limits);
    assert_stopped_by(&a.findings, a.verdict, "ops");
    let ran: u64 = a.streams.iter().map(|s| s.opcodes).sum();
    assert!(ran <= 1001, "{ran} opcodes ran");
}

#[test]
fn too_many_streams_stop_the_analysis() {
    let bytes = b"N.".repeat(1500);
    let a = analyze_with(&bytes, ckptscope::Format::Pickle, &Limits::DEFAULT);
    assert_eq!(a.streams.len(), 1500);
    assert!(a.stopped.is_none());
    let mut limits = Limits::DEFAULT;
    limits.apply("streams=1000").unwrap();
    let a = analyze_with(&bytes, ckptscope::Format::Pickle, &limits);
    assert_stopped_by(&a.findings, a.verdict, "streams");
    assert_eq!(a.streams.len(), 1000);
}

#[test]
fn pickles_nested_deeper_than_the_limit_are_not_called_safe() {
    // os.system wrapped five times in a bytes value of an otherwise empty pickle.
    let mut inner = Pickle::new(2).call1("os", "system", "id").stop().0;
    for _ in 0..5 {
        inner = Pickle::new(2).bytes(&inner).stop().0;
    }
    let a = analyze_with(&inner, ckptscope::Format::Pickle, &Limits::DEFAULT);
    assert_stopped_by(&a.findings, a.verdict, "nesting");
    // Within the limit, the payload is found through every level.
    let mut limits = Limits::DEFAULT;
    limits.apply("nesting=6").unwrap();
    let a = analyze_with(&inner, ckptscope::Format::Pickle, &limits);
    assert_eq!(a.verdict, Verdict::Dangerous, "{:#?}", a.findings);
}

#[test]
fn inflating_past_the_budget_stops_the_analysis() {
    // Three deflated members of 600 KB of zeros each, under an inflate budget of 1 MiB.
    let zeros = vec![0u8; 600_000];
    let deflated = miniz_oxide::deflate::compress_to_vec(&zeros, 6);
    let crc = common::crc32(&zeros);
    let bytes = (0..3)
        .fold(Zip::new(), |z, i| {
            z.add_deflated(&format!("archive/{i}.pkl"), &deflated, zeros.len(), crc)
        })
        .bytes();
    let mut limits = Limits::DEFAULT;
    limits.apply("inflated=1M").unwrap();
    let a = analyze_with(&bytes, ckptscope::Format::PytorchZip, &limits);
    assert_stopped_by(&a.findings, a.verdict, "inflated");
}

#[test]
fn distinct_findings_are_capped_but_counted() {
    let mut p = Pickle::new(2);
    for i in 0..500 {
        p = p.global(&format!("module{i}"), "thing").pop();
    }
    let bytes = p.none().stop().0;
    let mut limits = Limits::DEFAULT;
    limits.apply("findings=100").unwrap();
    let a = analyze_with(&bytes, ckptscope::Format::Pickle, &limits);
    assert_eq!(a.verdict, Verdict::Suspicious);
    assert!(a.findings.len() <= 101, "{}", a.findings.len());
    assert!(
        a.findings
            .iter()
            .any(|f| f.reason.starts_with("400 more suspicious findings")
                && f.reason.contains("--limit findings=N")),
        "{:#?}",
        a.findings.last()
    );
}

/// `_rebuild_tensor_v2` of storage `key` (`dtype_storage`, `numel` elements) as `shape` with
/// `stride`, inside an OrderedDict under `name`.
fn view_pickle(views: &[(&str, &str, u32, u64, u64)]) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
    for (name, storage, numel, size, stride) in views {
        p.push(b'X');
        p.extend_from_slice(&(name.len() as u32).to_le_bytes());
        p.extend_from_slice(name.as_bytes());
        p.extend_from_slice(
            b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n",
        );
        p.extend_from_slice(storage.as_bytes());
        p.extend_from_slice(b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ");
        p.extend_from_slice(&numel.to_le_bytes());
        p.extend_from_slice(b"tQK\x00\x8a\x08");
        p.extend_from_slice(&size.to_le_bytes());
        p.extend_from_slice(b"\x85\x8a\x08");
        p.extend_from_slice(&stride.to_le_bytes());
        p.extend_from_slice(b"\x85\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend_from_slice(b"u.");
    p
}

#[test]
fn a_stride_zero_expand_is_listed_honestly_and_totals_do_not_wrap() {
    // One byte of storage viewed as 2**40 bytes.
    let pkl = view_pickle(&[("huge", "ByteStorage", 1, 1 << 40, 0)]);
    let bytes = Zip::new()
        .add("archive/data.pkl", &pkl)
        .add("archive/data/0", &[7])
        .bytes();
    let (_dir, path) = write_temp("expand.pt", &bytes);
    let ckpt = ckptscope::format::open(&path).unwrap();
    let t = ckpt.tensor("huge").unwrap();
    assert_eq!(t.shape, vec![1 << 40]);
    assert_eq!(t.region_len(), 1);
    assert_eq!(t.expansion(), 1 << 40);
    let notes = &ckpt.pickle.as_ref().unwrap().notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`huge` is an expanded view")),
        "{notes:?}"
    );
    // Seventeen 2**60-byte views: their sum does not fit in 64 bits and must not wrap.
    let views: Vec<String> = (0..17).map(|i| format!("v{i}")).collect();
    let refs: Vec<(&str, &str, u32, u64, u64)> = views
        .iter()
        .map(|n| (n.as_str(), "ByteStorage", 1, 1u64 << 60, 0))
        .collect();
    let bytes = Zip::new()
        .add("archive/data.pkl", &view_pickle(&refs))
        .add("archive/data/0", &[0])
        .bytes();
    let (_dir, path) = write_temp("many.pt", &bytes);
    let ckpt = ckptscope::format::open(&path).unwrap();
    let unsupported = &ckpt.pickle.as_ref().unwrap().unsupported;
    assert_eq!(ckpt.tensors.len(), 17, "{unsupported:?}");
    assert_eq!(ckpt.tensor_bytes_total(), u64::MAX);
    assert_eq!(ckpt.parameters(), u64::MAX);
}

#[test]
fn opening_can_be_cancelled() {
    let bytes = build_bomb(200_000);
    let (_dir, path) = write_temp("bomb.pkl", &bytes);
    let progress = Progress::new();
    progress.cancel();
    let options = OpenOptions {
        pickle: PickleOptions {
            trust: Some(Verdict::Dangerous),
            ..PickleOptions::default()
        },
        progress: Some(Arc::clone(&progress)),
        ..OpenOptions::default()
    };
    let err = open_with(&path, &options).unwrap_err();
    assert!(matches!(err, ckptscope::Error::Cancelled { .. }), "{err}");
    // Not cancelled, the same file opens and the watcher saw every byte.
    let progress = Progress::new();
    let options = OpenOptions {
        progress: Some(Arc::clone(&progress)),
        ..options
    };
    open_with(&path, &options).unwrap();
    assert_eq!(progress.done(), bytes.len() as u64);
}

/// A small xorshift generator: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn no_generated_input_exceeds_the_budget() {
    // Opcode soup (biased towards the opcodes that build, call and nest) and mutations of a real
    // torch checkpoint, each analysed under small limits: the work done never exceeds them.
    let mut limits = Limits::DEFAULT;
    for a in [
        "ops=20000",
        "nodes=4000",
        "items=8000",
        "bytes=64K",
        "streams=20",
        "findings=40",
        "inflated=256K",
    ] {
        limits.apply(a).unwrap();
    }
    let seeds: Vec<Vec<u8>> = vec![
        std::fs::read(common::fixture("torch_zip_basic.pt")).unwrap(),
        std::fs::read(common::fixture("torch_legacy_basic.pt")).unwrap(),
        std::fs::read(common::fixture("malicious_exec.pkl")).unwrap(),
    ];
    const OPS: &[u8] =
        b"(}])NIJKXBCcdlgjhiPQqrtuabRsos0.\x80\x81\x85\x86\x87\x88\x89\x8c\x8e\x93\x94\x95";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..3000 {
        let bytes: Vec<u8> = if case % 3 == 0 {
            let mut b = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(b.len());
                b[at] = rng.next() as u8;
            }
            b
        } else {
            (0..rng.below(4096))
                .map(|_| {
                    if rng.below(4) == 0 {
                        rng.next() as u8
                    } else {
                        OPS[rng.below(OPS.len())]
                    }
                })
                .collect()
        };
        let format = ckptscope::detect::detect(&bytes);
        let a = analyze_with(&bytes, format, &limits);
        let ops: u64 = a.streams.iter().map(|s| s.opcodes).sum();
        assert!(ops <= 20_001, "case {case}: {ops} opcodes");
        assert!(
            a.streams.len() <= 20,
            "case {case}: {} streams",
            a.streams.len()
        );
        assert!(
            a.findings.len() <= 43,
            "case {case}: {} findings",
            a.findings.len()
        );
        if a.stopped.is_some() {
            assert_ne!(a.verdict, Verdict::Safe, "case {case}");
        }
    }
}

#[test]
fn a_member_whose_crc_does_not_match_is_reported() {
    let mut zip = Zip::new()
        .add("archive/data.pkl", &state_dict_pickle(1, 1))
        .add("archive/data/0", &[0; 4]);
    let honest = zip.bytes();
    let r = scan_with("honest.pt", &honest, &Limits::DEFAULT);
    assert_eq!(r.verdict, Verdict::Safe, "{:#?}", r.findings);
    zip.crc_override = Some(0x1234_5678);
    let r = scan_with("damaged.pt", &zip.bytes(), &Limits::DEFAULT);
    assert_eq!(r.verdict, Verdict::Suspicious);
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.contains("`archive/data.pkl` is damaged")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_flood_of_findings_cannot_hide_a_dangerous_one() {
    let mut p = Pickle::new(2);
    for i in 0..300 {
        p = p.global(&format!("module{i}"), "thing").pop();
    }
    let bytes = p.call1("os", "system", "id").stop().0;
    let mut limits = Limits::DEFAULT;
    limits.apply("findings=100").unwrap();
    let a = analyze_with(&bytes, ckptscope::Format::Pickle, &limits);
    assert_eq!(a.verdict, Verdict::Dangerous);
    assert!(
        a.findings
            .iter()
            .any(|f| f.global.as_deref() == Some("os.system")),
        "{:#?}",
        &a.findings[..3]
    );
}

#[test]
fn a_pickle_that_breaks_is_never_safe() {
    for (name, bytes) in [
        ("proto only", b"\x80\x02".to_vec()),
        ("no stop", b"\x80\x02N".to_vec()),
        ("bad opcode", b"\x80\x02N\xff.".to_vec()),
        ("underflow", b"\x80\x020.".to_vec()),
    ] {
        let a = analyze_with(&bytes, ckptscope::Format::Pickle, &Limits::DEFAULT);
        assert_eq!(a.verdict, Verdict::Suspicious, "{name}: {:#?}", a.findings);
    }
    let empty = Zip::new().add("archive/version", b"3\n").bytes();
    let a = analyze_with(&empty, ckptscope::Format::PytorchZip, &Limits::DEFAULT);
    assert_eq!(a.verdict, Verdict::Suspicious, "{:#?}", a.findings);
}

#[test]
fn diff_of_expanded_views_does_not_walk_every_copy() {
    use ckptscope::analysis::diff::{Status, diff};
    let pkl = view_pickle(&[("huge", "ByteStorage", 1, 1 << 40, 0)]);
    let one = Zip::new()
        .add("archive/data.pkl", &pkl)
        .add("archive/data/0", &[7])
        .bytes();
    let other = Zip::new()
        .add("archive/data.pkl", &pkl)
        .add("archive/data/0", &[8])
        .bytes();
    let (_d1, p1) = write_temp("one.pt", &one);
    let (_d2, p2) = write_temp("other.pt", &other);
    let a = ckptscope::format::open(&p1).unwrap();
    let b = ckptscope::format::open(&p2).unwrap();
    let same = diff(&a, &a, &Progress::new());
    assert_eq!(same.tensors[0].status, Status::Identical);
    let changed = diff(&a, &b, &Progress::new());
    assert_eq!(changed.tensors[0].status, Status::ValuesChanged);
    assert!(
        changed.tensors[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("expanded view")),
        "{:?}",
        changed.tensors[0]
    );
}
