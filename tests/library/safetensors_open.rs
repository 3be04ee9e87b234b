//! Opening safetensors files: every malformed case is rejected with a message that names the
//! problem, every valid edge case opens with what is in it, and fixtures match real-torch truth.

use crate::common;

use ckptscope::{DType, Error, Format, Problem};
use common::{expected, fixture, safetensors_bytes, sha256_hex, write_temp};

fn open_bytes(bytes: &[u8]) -> Result<ckptscope::Checkpoint, Error> {
    let (_dir, path) = write_temp("t.safetensors", bytes);
    ckptscope::open(&path)
}

fn problem(bytes: &[u8]) -> (Problem, String) {
    let err = open_bytes(bytes).expect_err("file should be rejected");
    let message = err.to_string();
    assert!(
        message.contains("t.safetensors"),
        "message should end with the path: {message}"
    );
    (err.problem().cloned().expect("a content problem"), message)
}

fn f32s(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

// ---- malformed files --------------------------------------------------------------------------

#[test]
fn rejects_a_file_shorter_than_the_length_field() {
    let (p, msg) = problem(b"\x05\x00\x00");
    assert_eq!(p, Problem::TooSmall { len: 3 });
    assert!(msg.contains("only 3 bytes"), "{msg}");
}

#[test]
fn rejects_a_header_length_over_the_limit() {
    let mut bytes = (200_000_000u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let (p, msg) = problem(&bytes);
    assert!(matches!(
        p,
        Problem::HeaderTooLarge {
            declared: 200_000_000,
            ..
        }
    ));
    assert!(msg.contains("200000000 bytes"), "{msg}");
}

#[test]
fn rejects_a_header_length_past_the_end() {
    let mut bytes = 100u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"a\":1}");
    let (p, msg) = problem(&bytes);
    assert_eq!(
        p,
        Problem::HeaderPastEnd {
            declared: 100,
            available: 7
        }
    );
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn rejects_a_header_that_is_not_utf8() {
    let mut bytes = safetensors_bytes("{\"ab\": 1}", b"");
    bytes[8 + 2] = 0xff;
    let (p, msg) = problem(&bytes);
    assert_eq!(p, Problem::HeaderNotUtf8 { offset: 2 });
    assert!(msg.contains("UTF-8"), "{msg}");
}

#[test]
fn rejects_a_header_that_is_not_json() {
    let (p, msg) = problem(&safetensors_bytes("{\"a\": {\"dtype\": ", b""));
    assert!(matches!(p, Problem::HeaderNotJson { .. }));
    assert!(
        msg.contains("not valid JSON") && msg.contains("column"),
        "{msg}"
    );
}

#[test]
fn rejects_a_json_value_that_is_not_an_object() {
    let (p, msg) = problem(&safetensors_bytes("   [1, 2]", b""));
    assert!(matches!(p, Problem::HeaderNotJson { .. }));
    assert!(msg.contains("expected a JSON object"), "{msg}");
}

#[test]
fn rejects_duplicate_tensor_names_which_the_crate_would_hide() {
    let header = r#"{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[1, 2]));
    assert_eq!(p, Problem::DuplicateTensor { name: "w".into() });
    assert!(msg.contains("`w` is listed twice"), "{msg}");
}

#[test]
fn rejects_duplicate_metadata_keys() {
    let header = r#"{"__metadata__":{"step":"1","step":"2"}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, b""));
    assert_eq!(p, Problem::DuplicateMetadataKey { key: "step".into() });
    assert!(msg.contains("`step` is listed twice"), "{msg}");
}

#[test]
fn rejects_metadata_values_that_are_not_strings() {
    let header = r#"{"__metadata__":{"epoch":3}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, b""));
    assert!(matches!(p, Problem::BadMetadata { .. }));
    assert!(msg.contains("`epoch` holds a number"), "{msg}");
}

#[test]
fn rejects_an_unknown_dtype_naming_the_tensor() {
    let header = r#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 16]));
    assert!(matches!(&p, Problem::BadTensorEntry { name, .. } if name == "w"));
    assert!(msg.contains("tensor `w`") && msg.contains("F128"), "{msg}");
}

#[test]
fn rejects_a_tensor_entry_missing_a_field() {
    let header = r#"{"w":{"dtype":"F32","shape":[1]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 4]));
    assert!(matches!(&p, Problem::BadTensorEntry { name, .. } if name == "w"));
    assert!(msg.contains("data_offsets"), "{msg}");
}

#[test]
fn rejects_negative_dimensions() {
    let header = r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#;
    let (p, _) = problem(&safetensors_bytes(header, &[0; 4]));
    assert!(matches!(&p, Problem::BadTensorEntry { name, .. } if name == "w"));
}

#[test]
fn rejects_a_shape_whose_size_overflows() {
    let header = r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 4]));
    assert!(matches!(&p, Problem::ShapeOverflow { name, .. } if name == "w"));
    assert!(msg.contains("too large"), "{msg}");
}

#[test]
fn rejects_sub_byte_values_that_do_not_fill_bytes() {
    let header = r#"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 2]));
    assert_eq!(
        p,
        Problem::SubByteMisaligned {
            name: "w".into(),
            dtype: DType::F4,
            elements: 3
        }
    );
    assert!(msg.contains("3 values of F4"), "{msg}");
}

#[test]
fn rejects_offsets_that_end_before_they_begin() {
    let header = r#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 4]));
    assert_eq!(
        p,
        Problem::OffsetsReversed {
            name: "w".into(),
            begin: 4,
            end: 0
        }
    );
    assert!(msg.contains("[4, 0]"), "{msg}");
}

#[test]
fn rejects_offsets_that_do_not_match_the_shape() {
    let header = r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 20]));
    assert!(matches!(
        p,
        Problem::SizeMismatch {
            expected: 24,
            begin: 0,
            end: 20,
            ..
        }
    ));
    assert!(
        msg.contains("F32 [2, 3] needs 24 bytes but data_offsets [0, 20] cover 20"),
        "{msg}"
    );
}

#[test]
fn rejects_a_gap_between_tensors() {
    let header = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 6]));
    assert!(
        matches!(&p, Problem::NotContiguous { name, begin: 4, expected: 2, .. } if name == "b")
    );
    assert!(
        msg.contains("`b` starts at data offset 4") && msg.contains("`a` ends at 2"),
        "{msg}"
    );
}

#[test]
fn rejects_overlapping_tensors() {
    let header = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
    let (p, _) = problem(&safetensors_bytes(header, &[0; 6]));
    assert!(
        matches!(&p, Problem::NotContiguous { name, begin: 2, expected: 4, .. } if name == "b")
    );
}

#[test]
fn rejects_data_that_does_not_start_at_zero() {
    let header = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 4]));
    assert!(matches!(
        p,
        Problem::NotContiguous {
            expected: 0,
            previous: None,
            ..
        }
    ));
    assert!(msg.contains("starts at 0"), "{msg}");
}

#[test]
fn rejects_trailing_bytes_after_the_data() {
    let header = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 5]));
    assert_eq!(
        p,
        Problem::DataLength {
            declared: 2,
            actual: 5
        }
    );
    assert!(msg.contains("trailing bytes"), "{msg}");
}

#[test]
fn rejects_truncated_tensor_data() {
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let (p, msg) = problem(&safetensors_bytes(header, &[0; 10]));
    assert_eq!(
        p,
        Problem::DataLength {
            declared: 16,
            actual: 10
        }
    );
    assert!(msg.contains("truncated file"), "{msg}");
}

#[test]
fn broken_file_named_safetensors_gets_a_precise_error_not_unknown_format() {
    // No '{' after the length: content detection says "unknown", the extension says what the
    // user meant, so the safetensors reader explains what is wrong.
    let mut bytes = 3u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"abc");
    let (p, _) = problem(&bytes);
    assert!(matches!(p, Problem::HeaderNotJson { .. }));
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = ckptscope::open("/nonexistent/model.safetensors".as_ref()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(
        err.to_string().contains("/nonexistent/model.safetensors"),
        "{err}"
    );
}

// ---- valid edge cases -------------------------------------------------------------------------

#[test]
fn opens_a_0d_scalar() {
    let header = r#"{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#;
    let c = open_bytes(&safetensors_bytes(header, &f32s(&[2.5]))).unwrap();
    let t = c.tensor("s").unwrap();
    assert!(t.shape.is_empty());
    assert_eq!(t.elements(), 1);
    assert_eq!(c.tensor_bytes(t).unwrap(), 2.5f32.to_le_bytes());
}

#[test]
fn opens_empty_tensors_side_by_side() {
    let header = r#"{"e1":{"dtype":"F32","shape":[0,7],"data_offsets":[0,0]},"e2":{"dtype":"I64","shape":[3,0],"data_offsets":[0,0]},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
    let c = open_bytes(&safetensors_bytes(header, &[9])).unwrap();
    assert_eq!(c.tensors.len(), 3);
    assert_eq!(c.tensor("e1").unwrap().elements(), 0);
    assert_eq!(c.tensor_bytes(c.tensor("e2").unwrap()).unwrap(), b"");
    assert_eq!(c.tensor_bytes(c.tensor("x").unwrap()).unwrap(), [9]);
}

#[test]
fn opens_a_file_with_no_tensors() {
    let c = open_bytes(&safetensors_bytes("{}", b"")).unwrap();
    assert!(c.tensors.is_empty() && c.metadata.is_empty());
    assert_eq!(c.header_size, 2);
}

#[test]
fn opens_metadata_only_files_keeping_key_order() {
    let c = open_bytes(&safetensors_bytes(
        r#"{"__metadata__":{"z":"1","a":"2","m":"{\"x\": 1}"}}"#,
        b"",
    ))
    .unwrap();
    let keys: Vec<_> = c.metadata.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["z", "a", "m"]);
    assert_eq!(c.metadata_value("m"), Some("{\"x\": 1}"));
}

#[test]
fn opens_sub_byte_dtypes_with_whole_bytes() {
    let header = r#"{"f4":{"dtype":"F4","shape":[2,2],"data_offsets":[0,2]},"f6a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[2,5]},"f6b":{"dtype":"F6_E3M2","shape":[8],"data_offsets":[5,11]}}"#;
    let c = open_bytes(&safetensors_bytes(header, &[0; 11])).unwrap();
    assert_eq!(c.tensor("f4").unwrap().byte_len(), 2);
    assert_eq!(c.tensor("f6a").unwrap().byte_len(), 3);
    assert_eq!(c.tensor("f6b").unwrap().dtype, DType::F6_E3M2);
}

#[test]
fn opens_every_dtype_of_safetensors_0_8() {
    let mut header = String::from("{");
    let mut offset = 0u64;
    for (i, d) in DType::ALL.iter().enumerate() {
        let n = d.bytes_for(8).unwrap();
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""t_{d}":{{"dtype":"{d}","shape":[2,4],"data_offsets":[{offset},{}]}}"#,
            offset + n
        ));
        offset += n;
    }
    header.push('}');
    let c = open_bytes(&safetensors_bytes(&header, &vec![0; offset as usize])).unwrap();
    assert_eq!(c.tensors.len(), 22);
    for d in DType::ALL {
        assert_eq!(c.tensor(&format!("t_{d}")).unwrap().dtype, d);
    }
}

#[test]
fn opens_non_ascii_names() {
    let header = r#"{"层.权重":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"caf\u00e9 🙂":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
    let c = open_bytes(&safetensors_bytes(header, &[1, 2])).unwrap();
    assert_eq!(c.tensor_bytes(c.tensor("层.权重").unwrap()).unwrap(), [1]);
    assert_eq!(c.tensor_bytes(c.tensor("café 🙂").unwrap()).unwrap(), [2]);
}

#[test]
fn opens_with_whitespace_around_the_json() {
    let header = "  \n\t{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}     ";
    let c = open_bytes(&safetensors_bytes(header, &[4])).unwrap();
    assert_eq!(c.format, Format::Safetensors);
    assert_eq!(c.header_size, header.len() as u64);
    assert_eq!(c.tensors[0].file_offset, 8 + header.len() as u64);
}

#[test]
fn tensors_out_of_offset_order_keep_header_order() {
    let header = r#"{"second":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"first":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
    let c = open_bytes(&safetensors_bytes(header, &[10, 20])).unwrap();
    assert_eq!(c.tensors[0].name, "second");
    assert_eq!(c.tensor_bytes(&c.tensors[0]).unwrap(), [20]);
}

// ---- fixtures written by real safetensors -----------------------------------------------------

#[test]
fn fixtures_match_ground_truth_bytes_dtypes_and_shapes() {
    for name in [
        "st_basic.safetensors",
        "st_dtypes.safetensors",
        "st_lineage_v1.safetensors",
        "st_lineage_v2.safetensors",
    ] {
        let c = ckptscope::open(&fixture(name)).unwrap();
        let truth = expected(name);
        assert_eq!(c.tensors.len(), truth.len(), "{name}");
        for (tname, e) in &truth {
            let t = c
                .tensor(tname)
                .unwrap_or_else(|| panic!("{name}: missing {tname}"));
            assert_eq!(t.dtype.name(), e.dtype, "{name}/{tname}");
            assert_eq!(t.shape, e.shape, "{name}/{tname}");
            assert_eq!(
                sha256_hex(c.tensor_bytes(t).unwrap()),
                e.sha256,
                "{name}/{tname}"
            );
        }
    }
}

#[test]
fn basic_fixture_metadata_in_file_order() {
    let c = ckptscope::open(&fixture("st_basic.safetensors")).unwrap();
    assert_eq!(
        c.metadata,
        [
            ("format".to_string(), "pt".to_string()),
            ("note".to_string(), "tiny mlp".to_string())
        ]
    );
    assert_eq!(c.header_size, 440);
    assert_eq!(c.file_size, 1424);
    assert_eq!(c.tensors[0].file_offset, 448);
}

#[test]
fn a_tensor_truncated_after_open_is_an_error_not_a_crash() {
    let header = r#"{"a":{"dtype":"U8","shape":[8192],"data_offsets":[0,8192]}}"#;
    let (_dir, path) = write_temp("t.safetensors", &safetensors_bytes(header, &[1; 8192]));
    let c = ckptscope::open(&path).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    let err = c.tensor_bytes(&c.tensors[0]).unwrap_err();
    assert!(err.to_string().contains("changed on disk"), "{err}");
}
