//! Real `torch.save` files read by the safe pickle engine match what real torch loaded from them:
//! every tensor's dotted name, dtype, shape, sha256 of its contiguous bytes, and which tensors
//! share a storage. Nothing is executed.

use crate::common;

use ckptscope::format::{OpenOptions, PickleOptions};
use ckptscope::pickle::policy::Verdict;
use ckptscope::{Checkpoint, Format};
use common::{assert_tensors_match_truth, fixture};

fn open(name: &str) -> Checkpoint {
    ckptscope::open(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn check_against_truth(name: &str) {
    let ckpt = open(name);
    let report = ckpt.pickle.as_ref().expect("pickle report");
    assert_eq!(
        report.verdict,
        Verdict::Safe,
        "{name}: {:#?}",
        report.findings
    );
    assert!(
        report.unsupported.is_empty(),
        "{name}: {:?}",
        report.unsupported
    );
    assert_tensors_match_truth(name, &ckpt);
}

#[test]
fn zip_checkpoint_matches_torch() {
    check_against_truth("torch_zip_basic.pt");
    assert_eq!(open("torch_zip_basic.pt").format, Format::PytorchZip);
}

#[test]
fn legacy_checkpoint_matches_torch() {
    check_against_truth("torch_legacy_basic.pt");
    assert_eq!(open("torch_legacy_basic.pt").format, Format::PytorchLegacy);
}

#[test]
fn every_dtype_matches_torch() {
    check_against_truth("torch_dtypes.pt");
}

#[test]
fn tied_weights_share_one_storage() {
    check_against_truth("torch_tied.pt");
}

#[test]
fn views_transposed_sliced_expanded_scalar_empty() {
    check_against_truth("torch_views.pt");
}

#[test]
fn lightning_checkpoint_names_are_dotted_paths() {
    check_against_truth("lightning_like.ckpt");
    let ckpt = open("lightning_like.ckpt");
    let objects = &ckpt.pickle.as_ref().unwrap().objects;
    assert!(
        objects.get("epoch").is_some_and(|e| e.is_number()),
        "{objects:#}"
    );
    assert!(objects.get("global_step").is_some(), "{objects:#}");
    assert!(
        objects
            .get("hyper_parameters")
            .is_some_and(|h| h.is_object())
    );
}

#[test]
fn malicious_files_are_dangerous_and_their_tensors_withheld() {
    for name in ["malicious_os_system.pt", "malicious_exec.pkl"] {
        let ckpt = open(name);
        let report = ckpt.pickle.as_ref().unwrap();
        assert_eq!(report.verdict, Verdict::Dangerous, "{name}");
        assert!(
            ckpt.tensors.is_empty(),
            "{name}: tensors are listed only on request"
        );
        let globals: Vec<_> = report
            .findings
            .iter()
            .filter_map(|f| f.global.as_deref())
            .collect();
        assert!(
            globals.contains(&"posix.system") || globals.contains(&"builtins.exec"),
            "{name}: {globals:?}"
        );
    }
    // On request (nothing is executed either way) the tensor of the malicious archive is read.
    let options = OpenOptions {
        pickle: PickleOptions {
            trust: Some(Verdict::Dangerous),
            ..PickleOptions::default()
        },
        ..OpenOptions::default()
    };
    let ckpt = ckptscope::format::open_with(&fixture("malicious_os_system.pt"), &options).unwrap();
    assert_eq!(ckpt.tensors.len(), 1);
    assert_eq!(ckpt.tensors[0].name, "w");
}

#[test]
fn ordered_dict_built_from_a_list_of_pairs_matches_torch() {
    // `collections.OrderedDict([[name, tensor], ...])`, as checkpoints saved around 2018 are.
    check_against_truth("ordered_pairs_legacy.pt");
    check_against_truth("ordered_pairs_zip.pt");
    assert_eq!(
        open("ordered_pairs_legacy.pt").format,
        Format::PytorchLegacy
    );
}

#[test]
fn a_dict_built_from_an_iterator_says_so_and_loses_no_tensor() {
    // `OrderedDict(zip(names, tensors))`: not pairs ckptscope can read, so the argument is shown
    // as `__args__` (its tensors listed under it) and a note says why.
    let path = common::fixture("zoo_odd/ordered_from_zip.pt");
    let options = OpenOptions {
        pickle: PickleOptions {
            trust: Some(Verdict::Suspicious),
            ..Default::default()
        },
        ..Default::default()
    };
    let ckpt = ckptscope::format::open_with(&path, &options).unwrap();
    let report = ckpt.pickle.as_ref().unwrap();
    assert_eq!(report.verdict, Verdict::Suspicious);
    assert_eq!(ckpt.tensors.len(), 6, "{:?}", report.notes);
    assert!(
        ckpt.tensors.iter().all(|t| t.name.starts_with("__args__.")),
        "{:?}",
        ckpt.tensors.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("does not read as key/value pairs")),
        "{:?}",
        report.notes
    );
}

#[test]
fn storages_no_tensor_views_are_noted() {
    // `torch.save(tensor.untyped_storage())`: no tensor at all, but the file holds data, and
    // the viewer must not pass that off as an empty checkpoint.
    let ckpt = open("zoo_odd/storage_root.pt");
    let report = ckpt.pickle.as_ref().unwrap();
    assert!(ckpt.tensors.is_empty());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("viewed by no tensor listed here")),
        "{:?}",
        report.notes
    );
    // Every zoo file that reads completely has no such note.
    for name in ["zoo/flat_p2.pt", "zoo/lightning.pt", "zoo/views.pt"] {
        let ckpt = open(name);
        let notes = &ckpt.pickle.as_ref().unwrap().notes;
        assert!(notes.is_empty(), "{name}: {notes:?}");
    }
}
