//! A GGUF model in the real app: the table lists ggml types, the header line says how shapes
//! are ordered, a quantized tensor's statistics are those of its dequantized values, and a type
//! that is not decoded says so.
#![cfg(feature = "gui")]

use crate::common;

use common::fixture;
use egui_kittest::kittest::Queryable as _;

#[test]
fn a_gguf_model_opens_with_its_types_and_dequantized_statistics() {
    let path = fixture("gguf/blocks.gguf");
    let mut h = common::app_harness(vec![path]);
    h.run();
    assert!(
        h.query_all_by_label_contains("slowest dimension first")
            .count()
            >= 1
    );
    assert!(h.query_all_by_label("Q4_K").count() >= 1);
    assert!(h.query_all_by_label("IQ2_XXS").count() >= 1);

    h.get_all_by_label("q4_k.weight").next().unwrap().click();
    h.run();
    let ckpt = ckptscope::open(&fixture("gguf/blocks.gguf")).unwrap();
    let t = ckpt.require("q4_k.weight").unwrap();
    let src = ckptscope::analysis::source(&ckpt, t).unwrap();
    let mean = (0..t.elements())
        .map(|i| src.value(i).unwrap())
        .sum::<f64>()
        / t.elements() as f64;
    {
        let inspector = &h.state().doc.as_ref().unwrap().inspector;
        let result = inspector
            .result
            .as_ref()
            .expect("statistics of the Q4_K tensor");
        assert_eq!(result.stats.count, 2048);
        assert!(
            (result.stats.mean - mean).abs() < 1e-9,
            "{} vs {mean}",
            result.stats.mean
        );
    }

    h.get_all_by_label("iq2_xxs.weight").next().unwrap().click();
    h.run();
    assert!(
        h.query_all_by_label_contains("statistics not supported for IQ2_XXS")
            .count()
            >= 1
    );
}
