//! One test per technique used to slip code past pickle scanners. Each pickle is built here from
//! opcodes; each must come out `dangerous` (or at least not `safe`), naming what it runs.

use crate::common;

use ckptscope::Format;
use ckptscope::pickle::policy::{Policy, Risk, Verdict};
use ckptscope::scan::{ScanResult, scan_file};
use common::{Pickle, Zip, fixture, write_temp};

fn scan(name: &str, bytes: &[u8]) -> ScanResult {
    let (_dir, path) = write_temp(name, bytes);
    scan_file(&path, &Policy::default(), &ckptscope::Limits::DEFAULT).unwrap()
}

/// Asserts the verdict is dangerous and some dangerous finding mentions `needle`.
fn assert_dangerous(r: &ScanResult, needle: &str) {
    assert_eq!(r.verdict, Verdict::Dangerous, "{:#?}", r.findings);
    assert!(
        r.findings.iter().any(|f| f.risk == Risk::Dangerous
            && (f.global.as_deref().is_some_and(|g| g.contains(needle))
                || f.reason.contains(needle))),
        "no dangerous finding mentions {needle}: {:#?}",
        r.findings
    );
}

fn os_system() -> Pickle {
    Pickle::new(2).call1("os", "system", "echo pwned")
}

#[test]
fn memo_decoy_strings_do_not_hide_stack_global() {
    // The real operands are memoized first; decoy literals are pushed (and popped) right before
    // STACK_GLOBAL, which then takes its operands from the memo.
    let p = Pickle::new(4)
        .str("os")
        .memoize()
        .str("system")
        .memoize()
        .pop()
        .pop()
        .str("collections")
        .str("OrderedDict")
        .pop()
        .pop()
        .get(0)
        .get(1)
        .stack_global()
        .str("id")
        .tuple1()
        .reduce()
        .stop();
    assert_dangerous(&scan("decoy.pkl", &p.0), "os.system");
}

#[test]
fn memoize_after_put_uses_the_memo_size_not_the_largest_index() {
    // PUT 7 then MEMOIZE stores 'os' at index 1 (len(memo)), as CPython does; a scanner
    // assuming "largest index + 1" puts it at 8 and cannot resolve GET 1.
    let p = Pickle::new(4)
        .str("collections")
        .put(7)
        .pop()
        .str("os")
        .memoize()
        .pop()
        .str("posix")
        .memoize()
        .pop()
        .get(1)
        .str("system")
        .stack_global()
        .str("id")
        .tuple1()
        .reduce()
        .stop();
    let r = scan("memoize.pkl", &p.0);
    assert_dangerous(&r, "os.system");
    assert!(
        !r.findings
            .iter()
            .any(|f| f.global.as_deref() == Some("posix.system"))
    );
}

#[test]
fn stack_global_with_operands_computed_by_allowlisted_calls() {
    // builtins.str is allowlisted, and str('os') is 'os' at load time.
    let p = Pickle::new(4)
        .call1("builtins", "str", "os")
        .call1("builtins", "str", "system")
        .stack_global()
        .str("id")
        .tuple1()
        .reduce()
        .stop();
    let r = scan("computed.pkl", &p.0);
    assert_dangerous(&r, "computed while loading");
}

#[test]
fn inst_obj_and_newobj_ex_are_calls_too() {
    let inst = Pickle::default().raw(b"(S'id'\nios\nsystem\n.");
    assert_dangerous(&scan("inst.pkl", &inst.0), "os.system");
    let obj = Pickle::new(1)
        .mark()
        .global("subprocess", "Popen")
        .str("id")
        .raw(b"o.");
    assert_dangerous(&scan("obj.pkl", &obj.0), "subprocess.Popen");
    let newobj_ex = Pickle::new(4)
        .global("subprocess", "Popen")
        .str("id")
        .tuple1()
        .empty_dict()
        .raw(&[0x92])
        .stop();
    assert_dangerous(&scan("newobj_ex.pkl", &newobj_ex.0), "subprocess.Popen");
}

#[test]
fn reduce_then_pop_leaves_a_clean_result_but_is_reported() {
    let p = os_system().pop().empty_dict().stop();
    let r = scan("popped.pkl", &p.0);
    assert_dangerous(&r, "os.system");
}

#[test]
fn build_on_an_allowlisted_function_is_dangerous() {
    // BUILD with (None, {"__code__": ...}) would setattr the function's code.
    let p = Pickle::new(2)
        .global("_codecs", "encode")
        .none()
        .empty_dict()
        .str("__code__")
        .str("payload")
        .raw(b"s")
        .tuple2()
        .build()
        .stop();
    assert_dangerous(&scan("build.pkl", &p.0), "_codecs.encode");
}

#[test]
fn dotted_names_through_allowlisted_modules_are_not_allowlisted() {
    let p = Pickle::new(4)
        .str("collections")
        .str("OrderedDict.__init__.__globals__")
        .stack_global()
        .stop();
    assert_dangerous(&scan("dotted.pkl", &p.0), "__globals__");
    let p = Pickle::new(4)
        .str("torch._utils")
        .str("_rebuild_tensor_v2.__globals__")
        .stack_global()
        .stop();
    assert_eq!(scan("dotted2.pkl", &p.0).verdict, Verdict::Dangerous);
}

#[test]
fn nested_pickle_bytes_are_followed() {
    let inner = Pickle::new(2).call1("os", "system", "id").stop().0;
    let p = Pickle::new(2)
        .global("torch.storage", "_load_from_bytes")
        .bytes(&inner)
        .tuple1()
        .reduce()
        .stop();
    let r = scan("nested.pkl", &p.0);
    assert_dangerous(&r, "_load_from_bytes");
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.starts_with("nested pickle")
                && f.global.as_deref() == Some("os.system")),
        "{:#?}",
        r.findings
    );
    // Hidden in a str turned into bytes by an allowlisted _codecs.encode, fed to pickle.loads.
    let latin1: String = inner.iter().map(|&b| char::from(b)).collect();
    let p = Pickle::new(2)
        .global("pickle", "loads")
        .global("_codecs", "encode")
        .str(&latin1)
        .str("latin1")
        .tuple2()
        .reduce()
        .tuple1()
        .reduce()
        .stop();
    let r = scan("nested2.pkl", &p.0);
    assert_dangerous(&r, "pickle.loads");
    assert!(
        r.findings
            .iter()
            .any(|f| f.global.as_deref() == Some("os.system"))
    );
}

#[test]
fn ext_opcodes_are_not_safe() {
    let p = Pickle::new(2)
        .raw(&[0x82, 0x05])
        .str("x")
        .tuple1()
        .reduce()
        .stop();
    let r = scan("ext.pkl", &p.0);
    assert_eq!(r.verdict, Verdict::Suspicious, "{:#?}", r.findings);
    assert!(r.findings.iter().any(|f| f.reason.contains("copyreg")));
}

#[test]
fn frames_do_not_hide_what_they_contain() {
    // A FRAME that declares 2 bytes, followed by a payload well past the frame's end.
    let p = Pickle::new(4)
        .raw(&[0x95, 2, 0, 0, 0, 0, 0, 0, 0])
        .raw(&os_system().0[2..])
        .stop();
    assert_dangerous(&scan("frame.pkl", &p.0), "os.system");
    // A FRAME that claims more bytes than the file has: the loader stops, but what came
    // before and what is written after is still reported.
    let p = Pickle::new(4)
        .raw(&os_system().0[2..])
        .raw(&[0x95, 0xff, 0xff, 0, 0, 0, 0, 0, 0])
        .global("subprocess", "call");
    let r = scan("frame2.pkl", &p.0);
    assert_dangerous(&r, "os.system");
    assert_dangerous(&r, "subprocess.call");
}

#[test]
fn payload_then_garbage_is_still_dangerous() {
    let p = os_system().raw(b"\xff\xfe garbage with no STOP");
    let r = scan("garbage.pkl", &p.0);
    assert_dangerous(&r, "os.system");
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.contains("malformed pickle"))
    );
}

#[test]
fn a_stream_hidden_after_one_junk_byte_is_found_and_judged() {
    // A benign stream, one NUL, then os.system: a loader that calls pickle.load twice (or
    // seeks) runs it; a scanner that stops at the NUL calls the file safe.
    let mut bytes = Pickle::new(2).empty_dict().stop().0;
    bytes.push(0);
    bytes.extend_from_slice(&os_system().stop().0);
    let r = scan("hidden.pkl", &bytes);
    assert_dangerous(&r, "os.system");
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.contains("hidden at offset 5")),
        "{:#?}",
        r.findings
    );
    // Protocol 4, STACK_GLOBAL (invisible to a GLOBAL-line walk), behind junk that starts like
    // a pickle.
    let mut bytes = Pickle::new(2).empty_dict().stop().0;
    bytes.extend_from_slice(b"N\xff\xfe");
    bytes.extend_from_slice(
        &Pickle::new(4)
            .str("posix")
            .str("system")
            .stack_global()
            .str("id")
            .tuple1()
            .reduce()
            .stop()
            .0,
    );
    assert_dangerous(&scan("hidden4.pkl", &bytes), "posix.system");
}

#[test]
fn junk_after_stop_with_no_stream_in_it_stays_safe() {
    let mut bytes = Pickle::new(2).empty_dict().stop().0;
    // Pseudo-random junk (a fixed LCG), with the odd PROTO-looking pair in it.
    let mut x = 0x2545_f491_u32;
    for _ in 0..(1 << 20) {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((x >> 16) as u8);
    }
    let r = scan("junk.pkl", &bytes);
    assert_eq!(r.verdict, Verdict::Safe, "{:#?}", r.findings);
}

/// The search of a tail is bounded by the file's opcode budget, whatever the tail: here every
/// third byte starts a candidate stream that fails at once. With the default budget a tail of
/// any size costs at most `max_ops / RESYNC_COST` tries; a smaller budget shows the bound (and
/// that running out of it is reported, never `safe`) without a timed test.
#[test]
fn a_large_junk_tail_costs_at_most_the_opcode_budget() {
    let mut bytes = Pickle::new(2).empty_dict().stop().0;
    bytes.push(0);
    for _ in 0..(16 << 20) / 3 {
        bytes.extend_from_slice(b"\x80\x02\xff");
    }
    let mut limits = ckptscope::Limits::DEFAULT;
    limits.pickle.max_ops = 1_000_000;
    let a = ckptscope::pickle::analyze(&bytes, Format::Pickle, &Policy::default(), &limits, None);
    let ops: u64 = a.streams.iter().map(|s| s.opcodes).sum();
    assert!(ops <= limits.pickle.max_ops);
    assert!(
        a.stopped
            .as_deref()
            .is_some_and(|s| s.contains("hidden streams")),
        "{:?}",
        a.stopped
    );
    assert_eq!(a.verdict, Verdict::Suspicious);
    // A tail with no candidate at all is one pass over its bytes.
    let mut bytes = Pickle::new(2).empty_dict().stop().0;
    bytes.extend(std::iter::repeat_n(0u8, 64 << 20));
    let r = scan("zeros.pkl", &bytes);
    assert_eq!(r.verdict, Verdict::Safe);
}

/// `data.pkl` whose BINUNICODE runs past its FRAME. Read through the boundary (pickle.loads,
/// pickletools, most scanners) it is the string 'aFFFFFFF'; read the way torch.load reads a
/// zip's data.pkl (the C unpickler over io.BytesIO drops the rest of the frame) it calls
/// posix.system. Checked with CPython 3.11: `pickle.loads(b)` -> 'aFFFFFFF',
/// `pickle.Unpickler(io.BytesIO(b)).load()` calls the function, `pickle._loads(b)` raises
/// "pickle exhausted before end of frame".
fn frame_straddle_pickle(hidden: &[u8]) -> Vec<u8> {
    let len: u32 = 8;
    let mut body = vec![b'X'];
    body.extend_from_slice(&len.to_le_bytes());
    body.push(b'a');
    let mut out = vec![0x80, 4, 0x95];
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend(std::iter::repeat_n(b'F', len as usize - 1));
    out.push(b'.');
    out.push(b'0');
    out.extend_from_slice(hidden);
    out
}

#[test]
fn a_string_running_past_its_frame_is_read_as_torch_reads_it_and_the_divergence_reported() {
    let hidden = Pickle(Vec::new())
        .global("posix", "system")
        .str("id")
        .tuple1()
        .reduce()
        .stop()
        .0;
    let pkl = frame_straddle_pickle(&hidden);
    let zip = Zip::new()
        .add("archive/data.pkl", &pkl)
        .add("archive/version", b"3\n");
    let r = scan("straddle.pt", &zip.bytes());
    assert_dangerous(&r, "posix.system");
    assert!(
        r.findings
            .iter()
            .any(|f| f.risk >= Risk::Suspicious && f.reason.contains("frame-boundary divergence")),
        "{:#?}",
        r.findings
    );
    // As a plain pickle file it is read through first; the torch reading is judged too.
    let r = scan("straddle.pkl", &pkl);
    assert_dangerous(&r, "posix.system");
    // The divergence alone, with nothing hidden behind it, is suspicious.
    let benign = Pickle(Vec::new()).none().stop().0;
    let r = scan("straddle_benign.pkl", &frame_straddle_pickle(&benign));
    assert_eq!(r.verdict, Verdict::Suspicious, "{:#?}", r.findings);
}

#[test]
fn concatenated_pickles_are_all_scanned() {
    let benign = Pickle::new(2).empty_dict().stop().0;
    let mut bytes = benign.clone();
    bytes.extend_from_slice(&os_system().stop().0);
    let r = scan("joblib.pkl", &bytes);
    assert_eq!(r.format, Format::Pickle);
    assert_dangerous(&r, "os.system");
    assert_eq!(r.streams.len(), 2);
}

fn malicious_data_pkl() -> Vec<u8> {
    Pickle::new(2).call1("posix", "system", "id").stop().0
}

#[test]
fn zip_named_safetensors_is_detected_by_content() {
    let zip = Zip::new()
        .add("archive/data.pkl", &malicious_data_pkl())
        .add("archive/version", b"3\n");
    let r = scan("model.safetensors", &zip.bytes());
    assert_eq!(r.format, Format::PytorchZip);
    assert_dangerous(&r, "posix.system");
    // A raw pickle named .txt, and one with no extension.
    assert_dangerous(&scan("notes.txt", &malicious_data_pkl()), "posix.system");
    assert_dangerous(&scan("weights", &malicious_data_pkl()), "posix.system");
}

#[test]
fn upper_case_data_pkl_is_found_as_torch_finds_it() {
    let zip = Zip::new()
        .add("archive/DATA.PKL", &malicious_data_pkl())
        .add("archive/version", b"3\n");
    let r = scan("upper.pt", &zip.bytes());
    assert_dangerous(&r, "posix.system");
    assert!(
        r.findings
            .iter()
            .any(|f| f.member.as_deref() == Some("archive/DATA.PKL"))
    );
}

#[test]
fn protocol_0_pickle_under_another_member_name() {
    let benign = Pickle::new(2).empty_dict().stop().0;
    let zip = Zip::new()
        .add("archive/data.pkl", &benign)
        .add("archive/extra/README.txt", b"cos\nsystem\n(S'id'\ntR.");
    let r = scan("hidden.pt", &zip.bytes());
    assert_dangerous(&r, "os.system");
    assert!(
        r.findings
            .iter()
            .any(|f| f.member.as_deref() == Some("archive/extra/README.txt"))
    );
}

#[test]
fn crc_and_flag_tampering_do_not_stop_the_scan() {
    let mut zip = Zip::new().add("archive/data.pkl", &malicious_data_pkl());
    zip.crc_override = Some(0xdead_beef);
    zip.flags = 0x08 | 0x0800 | 0x4000;
    assert_dangerous(&scan("crc.pt", &zip.bytes()), "posix.system");
    // Local header names that disagree with the central directory (Python's zipfile refuses
    // these; torch reads them).
    let mut zip = Zip::new().add("archive/data.pkl", &malicious_data_pkl());
    zip.local_name_override = Some("archive/innocent.txt".into());
    let r = scan("mismatch.pt", &zip.bytes());
    assert_dangerous(&r, "posix.system");
    assert!(r.findings.iter().any(|f| f.reason.contains("local header")));
}

#[test]
fn deflated_data_pkl_is_inflated_and_scanned() {
    let pkl = malicious_data_pkl();
    let deflated = miniz_oxide::deflate::compress_to_vec(&pkl, 6);
    let mut bytes = Zip::new().add("archive/data.pkl", &deflated).bytes();
    // Method 8 (deflate) and the real uncompressed size, in the local and central headers.
    bytes[8] = 8;
    let cd = bytes
        .windows(4)
        .position(|w| w == 0x0201_4b50u32.to_le_bytes())
        .unwrap();
    bytes[cd + 10] = 8;
    bytes[cd + 24..cd + 28].copy_from_slice(&(pkl.len() as u32).to_le_bytes());
    assert_dangerous(&scan("deflated.pt", &bytes), "posix.system");
}

#[test]
fn torchscript_archives_are_recognised_as_not_safely_loadable() {
    let zip = Zip::new()
        .add(
            "m/data.pkl",
            &Pickle::new(2)
                .global("__torch__", "Model")
                .empty_tuple()
                .raw(&[0x81])
                .stop()
                .0,
        )
        .add("m/constants.pkl", &Pickle::new(2).empty_tuple().stop().0)
        .add("m/code/__torch__.py", b"def forward(self): ...");
    let r = scan("scripted.pt", &zip.bytes());
    assert_eq!(r.format, Format::Torchscript);
    assert_ne!(r.verdict, Verdict::Safe);
    assert!(r.findings.iter().any(|f| f.reason.contains("TorchScript")));
}

#[test]
fn memo_fan_out_bomb_ends_quickly() {
    // L0 = [1,1,...]; L(k+1) = [L(k)] * 10 by memo GETs, 40 levels: 10^40 leaves if expanded.
    let mut p = Pickle::new(2).raw(b"]").put(0).raw(b"(K\x01K\x01e");
    for level in 1..40u8 {
        p = p.raw(b"]").put(level).mark();
        for _ in 0..10 {
            p = p.get(level - 1);
        }
        p = p.raw(b"e");
    }
    let p = p.stop();
    let start = std::time::Instant::now();
    let (_dir, path) = write_temp("laughs.pkl", &p.0);
    let ckpt = ckptscope::open(&path).unwrap();
    let report = ckpt.pickle.as_ref().unwrap();
    assert_eq!(report.verdict, Verdict::Safe);
    let json = serde_json::to_string(&report.objects).unwrap();
    assert!(
        json.len() < 100_000,
        "the tree is described once, not expanded ({} bytes)",
        json.len()
    );
    assert!(start.elapsed().as_secs() < 10);
}

#[test]
fn deep_nesting_bombs_end_with_limits() {
    // 200,000 nested lists built without MARKs.
    let mut bytes = vec![0x80, 2];
    bytes.extend(std::iter::repeat_n(b']', 200_000));
    bytes.extend(std::iter::repeat_n(b'a', 199_999));
    bytes.push(b'.');
    let (_dir, path) = write_temp("deep.pkl", &bytes);
    let ckpt = ckptscope::open(&path).unwrap();
    let report = ckpt.pickle.as_ref().unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("nested deeper")),
        "{:?}",
        report.notes
    );
    // 200,000 nested MARKs hit the nesting limit.
    let mut bytes = vec![0x80, 2];
    bytes.extend(std::iter::repeat_n(b'(', 200_000));
    let r = scan("marks.pkl", &bytes);
    assert!(
        r.findings.iter().any(|f| f.reason.contains("nested MARKs")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn user_allowlist_turns_a_known_class_safe_but_never_os() {
    let p = Pickle::new(2)
        .global("argparse", "Namespace")
        .empty_tuple()
        .reduce()
        .stop();
    let (_dir, path) = write_temp("ns.pkl", &p.0);
    let limits = ckptscope::Limits::DEFAULT;
    let r = scan_file(&path, &Policy::default(), &limits).unwrap();
    assert_eq!(r.verdict, Verdict::Suspicious);
    let allow = Policy::with_allow(["argparse.*".to_string()]);
    assert_eq!(
        scan_file(&path, &allow, &limits).unwrap().verdict,
        Verdict::Safe
    );
    let (_dir2, path2) = write_temp("os.pkl", &os_system().stop().0);
    let allow = Policy::with_allow(["os.system".to_string()]);
    assert_eq!(
        scan_file(&path2, &allow, &limits).unwrap().verdict,
        Verdict::Dangerous
    );
}

#[test]
fn real_malicious_fixtures_are_dangerous() {
    for (name, global) in [
        ("malicious_os_system.pt", "posix.system"),
        ("malicious_exec.pkl", "builtins.exec"),
    ] {
        let r = scan_file(
            &fixture(name),
            &Policy::default(),
            &ckptscope::Limits::DEFAULT,
        )
        .unwrap();
        assert_dangerous(&r, global);
    }
}

/// One real code-running function per gadget family, each called the way a payload calls it
/// (`GLOBAL module name`, one string argument, `REDUCE`): every one must be `dangerous`.
#[test]
fn code_running_gadgets_of_every_family_are_dangerous() {
    let gadgets = [
        // Commands behind innocent names in the standard library.
        ("_osx_support", "_read_output"),
        ("_aix_support", "_read_cmd_output"),
        ("_pyrepl.pager", "pipe_pager"),
        ("test.support.script_helper", "assert_python_ok"),
        ("uuid", "_get_command_stdout"),
        ("distutils.spawn", "spawn"),
        ("asyncio.subprocess", "create_subprocess_shell"),
        ("multiprocessing.popen_spawn_posix", "Popen"),
        ("pydoc", "pipepager"),
        ("webbrowser", "open"),
        ("pipes", "Template"),
        ("pexpect", "run"),
        ("tkinter", "Tcl"),
        ("platform", "popen"),
        // Python source or bytecode run from a string.
        ("code", "InteractiveInterpreter.runsource"),
        ("codeop", "compile_command"),
        ("timeit", "timeit"),
        ("trace", "Trace.runctx"),
        ("cProfile", "run"),
        ("profile", "run"),
        ("pdb", "run"),
        ("bdb", "Bdb.run"),
        ("doctest", "debug_script"),
        ("idlelib.pyshell", "ModifiedInterpreter.runcode"),
        ("lib2to3.pgen2.grammar", "Grammar.loads"),
        ("numpy.testing._private.utils", "runstring"),
        ("_interpreters", "run_string"),
        ("builtins", "help"),
        ("builtins", "breakpoint"),
        ("builtins", "__build_class__"),
        ("types", "FunctionType"),
        ("types", "CodeType"),
        ("marshal", "loads"),
        // Imports of arbitrary code.
        ("importlib", "import_module"),
        ("imp", "load_source"),
        ("_imp", "create_dynamic"),
        ("pkgutil", "resolve_name"),
        ("zipimport", "zipimporter"),
        ("unittest", "main"),
        ("ctypes", "CDLL"),
        ("cffi", "FFI"),
        ("torch.ops", "load_library"),
        // Installers.
        ("setuptools.sandbox", "run_setup"),
        ("pip._internal.cli.main", "main"),
        ("ensurepip", "_run_pip"),
        ("venv", "create"),
        // Indirect calls.
        ("operator", "attrgetter"),
        ("operator", "methodcaller"),
        ("functools", "partial"),
        ("functools", "reduce"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        // Files and nested pickles.
        ("shutil", "rmtree"),
        ("tempfile", "mkstemp"),
        ("pathlib", "Path.write_text"),
        ("tarfile", "open"),
        ("sqlite3", "connect"),
        ("logging", "FileHandler"),
        ("logging.config", "listen"),
        ("compileall", "compile_dir"),
        ("pandas.io.pickle", "read_pickle"),
        ("numpy", "fromfile"),
        ("torch.utils._config_module", "ConfigModule.load_config"),
        ("atexit", "register"),
    ];
    for (module, name) in gadgets {
        let p = Pickle::new(2).call1(module, name, "id").stop();
        let r = scan(&format!("{module}.pkl"), &p.0);
        assert_dangerous(&r, &format!("{module}.{name}"));
    }
}

/// The data classes of those modules stay what they are: unknown (so `suspicious`), not
/// `dangerous`.
#[test]
fn data_classes_near_gadget_modules_are_not_dangerous() {
    for (module, name) in [
        ("uuid", "UUID"),
        ("pathlib", "PosixPath"),
        ("logging", "getLogger"),
        ("test", "Net"),
    ] {
        let p = Pickle::new(2).call1(module, name, "x").stop();
        let r = scan(&format!("{module}.pkl"), &p.0);
        assert_eq!(
            r.verdict,
            Verdict::Suspicious,
            "{module}.{name}: {:#?}",
            r.findings
        );
    }
}
