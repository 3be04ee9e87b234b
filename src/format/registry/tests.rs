use super::*;

/// Every variant, by an exhaustive match: a new variant does not compile until it is here,
/// and the test below then asks for its table entry.
fn all_formats() -> Vec<Format> {
    let all = [
        Format::Safetensors,
        Format::SafetensorsSharded,
        Format::PytorchZip,
        Format::PytorchLegacy,
        Format::PytorchTar,
        Format::Torchscript,
        Format::Pickle,
        Format::Numpy,
        Format::NumpyZip,
        Format::Gguf,
        Format::Onnx,
        Format::Hdf5,
        Format::Keras,
        Format::TfSavedModel,
        Format::TfGraph,
        Format::TfCheckpoint,
        Format::TfLite,
        Format::FlaxMsgpack,
        Format::Paddle,
        Format::Arrow,
        Format::JoblibCompressed,
        Format::SevenZip,
        Format::CompressedTar,
        Format::Tar,
        Format::Compressed,
        Format::OtherModel,
        Format::Zip,
        Format::Unknown,
    ];
    for f in all {
        match f {
            Format::Safetensors
            | Format::SafetensorsSharded
            | Format::PytorchZip
            | Format::PytorchLegacy
            | Format::PytorchTar
            | Format::Torchscript
            | Format::Pickle
            | Format::Numpy
            | Format::NumpyZip
            | Format::Gguf
            | Format::Onnx
            | Format::Hdf5
            | Format::Keras
            | Format::TfSavedModel
            | Format::TfGraph
            | Format::TfCheckpoint
            | Format::TfLite
            | Format::FlaxMsgpack
            | Format::Paddle
            | Format::Arrow
            | Format::JoblibCompressed
            | Format::SevenZip
            | Format::CompressedTar
            | Format::Tar
            | Format::Compressed
            | Format::OtherModel
            | Format::Zip
            | Format::Unknown => {}
        }
    }
    all.to_vec()
}

#[test]
fn every_format_has_one_entry_and_unique_names() {
    for f in all_formats() {
        let n = FORMATS.iter().filter(|e| e.format == f).count();
        assert_eq!(n, 1, "{f:?} has {n} registry entries");
    }
    assert_eq!(FORMATS.len(), all_formats().len());
    assert_eq!(FORMATS.last().map(|e| e.format), Some(Format::Unknown));
    let mut names: Vec<&str> = FORMATS.iter().map(|e| e.json_name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), FORMATS.len(), "json names are unique");
    // The serde spelling of the enum is the registry's json name.
    for e in FORMATS {
        let serde = serde_json::to_value(e.format).unwrap();
        assert_eq!(serde.as_str(), Some(e.json_name), "{:?}", e.format);
    }
}

#[test]
fn names_claim_formats() {
    let cases = [
        ("model.safetensors", Some(Format::Safetensors)),
        (
            "model.safetensors.index.json",
            Some(Format::SafetensorsSharded),
        ),
        ("pytorch_model.bin", Some(Format::PytorchZip)),
        ("epoch=1.CKPT", Some(Format::PytorchZip)),
        ("model.gguf", Some(Format::Gguf)),
        ("model.weights.h5", Some(Format::Hdf5)),
        ("model.h5", Some(Format::Hdf5)),
        ("model.keras", Some(Format::Keras)),
        ("saved_model.pb", Some(Format::TfSavedModel)),
        ("fingerprint.pb", Some(Format::TfGraph)),
        ("model.ckpt.meta", Some(Format::TfGraph)),
        ("variables.data-00000-of-00001", Some(Format::TfCheckpoint)),
        ("model.tflite", Some(Format::TfLite)),
        ("flax_model.msgpack", Some(Format::FlaxMsgpack)),
        ("model.pdparams", Some(Format::Paddle)),
        ("model.pdiparams", Some(Format::Paddle)),
        ("table.feather", Some(Format::Arrow)),
        ("table_stream.arrows", Some(Format::Arrow)),
        ("m.weights.json", Some(Format::Keras)),
        ("ckpt/manifest.ocdbt", Some(Format::FlaxMsgpack)),
        ("data.tar.gz", Some(Format::CompressedTar)),
        ("data.tgz", Some(Format::CompressedTar)),
        ("data.tar", Some(Format::Tar)),
        ("a.7z", Some(Format::SevenZip)),
        ("model.joblib", Some(Format::Pickle)),
        ("config.json", None),
        ("README.md", None),
        ("x.data-0000-of-00001", None),
        (".pt", None),
    ];
    for (name, format) in cases {
        assert_eq!(
            claimed_by_name(Path::new(name)).map(|e| e.format),
            format,
            "{name}"
        );
    }
    assert!(name_claims(Path::new("model.pt.gz")));
    assert!(!name_claims(Path::new("notes.txt.gz")));
}

#[test]
fn content_and_name_identify_what_is_judged() {
    let id = |name: &str, bytes: &[u8]| identify(Path::new(name), bytes);
    // Content decides for formats it knows.
    assert_eq!(id("model.h5", b"\x80\x02}q\x00."), Format::Pickle);
    assert_eq!(id("model.pdparams", b"\x80\x04\x95"), Format::Pickle);
    assert_eq!(id("x.bin", b"\x89HDF\r\n\x1a\n...."), Format::Hdf5);
    // Unknown bytes named like a format not read are that format.
    assert_eq!(
        id("flax_model.msgpack", b"\x82\xa6params"),
        Format::FlaxMsgpack
    );
    assert_eq!(
        id("saved_model.pb", b"\x08\x01\x12\x04"),
        Format::TfSavedModel
    );
    // Unknown bytes named like a format read stay unknown (the scan says what the name
    // claims).
    assert_eq!(id("model.gguf", b"GGUX garbage"), Format::Unknown);
    // Compressed streams are known by their name.
    assert_eq!(
        id("model.joblib", b"\x78\x9c\x01\x02"),
        Format::JoblibCompressed
    );
    assert_eq!(
        id("model.joblib", b"\x1f\x8b\x08\x00"),
        Format::JoblibCompressed
    );
    assert_eq!(
        id("data.tar.xz", b"\xfd7zXZ\x00\x00"),
        Format::CompressedTar
    );
    assert_eq!(id("log.txt.gz", b"\x1f\x8b\x08\x00"), Format::Compressed);
    assert_eq!(id("notes.txt", b"\x78\x9c\x01\x02"), Format::Unknown);
    let index = br#"{"metadata": {}, "weight_map": {"a": "m_00000.weights.h5"}}"#;
    assert_eq!(id("m.weights.json", index), Format::Keras);
    assert_eq!(
        id("model.safetensors.index.json", index),
        Format::SafetensorsSharded
    );
}

#[test]
fn tf_shard_names_need_five_digits_each_side() {
    assert!(Pattern::TfShard.matches("variables.data-00000-of-00001"));
    assert!(Pattern::TfShard.matches("model.ckpt-100.data-00003-of-00010"));
    assert!(!Pattern::TfShard.matches("variables.data-0000x-of-00001"));
    assert!(!Pattern::TfShard.matches("variables.data-00000-of-000011"));
    assert!(!Pattern::TfShard.matches("variables.data"));
}

#[test]
fn refused_formats_say_what_they_are_and_that_they_are_not_read() {
    for e in FORMATS.iter().filter(|e| e.refused()) {
        let why = not_read(e.format);
        assert!(why.contains(e.label), "{why}");
        assert!(why.contains("not known to be safe"), "{why}");
    }
    assert!(!lookup(Format::Unknown).refused());
    assert!(lookup(Format::Keras).refused());
    assert!(!lookup(Format::Safetensors).refused());
}

#[test]
fn consumers_list_the_formats_read() {
    let exts = open_extensions();
    for e in [
        "safetensors",
        "json",
        "pt",
        "pth",
        "bin",
        "ckpt",
        "pkl",
        "npy",
        "npz",
        "gguf",
        "onnx",
    ] {
        assert!(exts.contains(&e), "{e} in {exts:?}");
    }
    assert!(!exts.contains(&"keras"), "formats not read are not offered");
    let shown = shown_names();
    assert!(
        shown.contains(".safetensors · .safetensors.index.json · .pt .pth .bin .ckpt"),
        "{shown}"
    );
    assert!(shown.contains(".gguf") && shown.contains(".onnx") && shown.contains(".npz"));
    assert!(lineage_name(Path::new("a/model.safetensors")));
    assert!(lineage_name(Path::new("a/model.safetensors.index.json")));
    assert!(lineage_name(Path::new("epoch=3.ckpt")));
    assert!(!lineage_name(Path::new("model.gguf")));
    assert!(!lineage_name(Path::new("notes.txt")));
}
