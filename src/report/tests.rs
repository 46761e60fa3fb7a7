use ndarray::{array, Array2};

use super::*;

fn rows<'a>(x: &'a Array2<f32>, y: &'a [&'a str], synthetic: &'a [bool]) -> Rows<'a, &'a str> {
    Rows {
        x: x.view(),
        categories: Categories::none(x.nrows()),
        y,
        synthetic,
    }
}

/// The problems of `c` with verdicts drawn from one synthetic row on.
fn judged(c: &ClassReport) -> Vec<String> {
    let mut c = c.clone();
    c.problems.clear();
    judge(
        &mut c,
        &Thresholds {
            min_rows: 1,
            ..THRESHOLDS
        },
    );
    c.problems
}

#[test]
fn a_copied_row_is_a_near_copy_and_a_row_on_another_class_is_overlap() {
    // Class a: real rows spread on a line; class b: real rows far away.
    let x = array![
        [0.0f32, 0.0],
        [1.0, 0.0],
        [2.0, 0.0],
        [3.0, 0.0],
        [20.0, 20.0],
        [21.0, 20.0],
        // Synthetic rows of a: one copies real row 1, one sits on class b's point.
        [1.0, 0.0],
        [20.0, 20.0],
    ];
    let y = ["a", "a", "a", "a", "b", "b", "a", "a"];
    let synthetic = [false, false, false, false, false, false, true, true];
    let r = report(
        &Device::Cpu,
        &rows(&x, &y, &synthetic),
        &Columns::numbered(2, 0),
    )
    .unwrap();
    assert_eq!(r.classes.len(), 1);
    let c = &r.classes[0];
    assert_eq!((c.real_rows, c.synthetic_rows), (4, 2));
    let k = c.closeness.as_ref().unwrap();
    // Real rows of a are one unit apart (in standard units: 1 / sd of column 0).
    assert!(k.near_copy_distance > 0.0);
    assert_eq!(k.exact_copies, 0.5);
    assert_eq!(k.near_copies, 0.5);
    assert_eq!(k.overlap, 0.5);
    assert_eq!(k.real_overlap, 0.0);
    // The copy's nearest real row is row 1, the stray's row 3: two of four covered.
    assert_eq!(k.coverage, 0.5);
    // Two synthetic rows are too few for a verdict; with the limit lowered, both problems show.
    assert!(c.verdict.contains("too few to judge"), "{}", c.verdict);
    let problems = judged(c);
    assert!(
        problems.iter().any(|p| p.starts_with("exact copies 50%")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("overlap 50%")),
        "{problems:?}"
    );
}

#[test]
fn fidelity_compares_means_spreads_and_distributions() {
    // Real rows of a: column 0 is 0, 2 (mean 1, sd 1); synthetic: 1, 1 (sd 0); column 1 is
    // constant 5 in the real rows.
    let x = array![
        [0.0f32, 5.0],
        [2.0, 5.0],
        [1.0, 5.0],
        [1.0, 6.0],
        [9.0, 9.0]
    ];
    let y = ["a", "a", "a", "a", "b"];
    let synthetic = [false, false, true, true, false];
    let r = report(
        &Device::Cpu,
        &rows(&x, &y, &synthetic),
        &Columns::numbered(2, 0),
    )
    .unwrap();
    let c = &r.classes[0];
    let f = &c.numeric[0];
    assert_eq!(
        (f.real_mean, f.real_sd, f.synthetic_mean, f.synthetic_sd),
        (1.0, 1.0, 1.0, 0.0)
    );
    assert_eq!(f.sd_ratio, Some(0.0));
    assert_eq!(f.ks, 0.5);
    // A constant real column has no ratio (not NaN), and nothing to correlate.
    assert_eq!(c.numeric[1].sd_ratio, None);
    assert!(c.correlation.is_none());
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        !json.contains("NaN") && json.contains("\"sd_ratio\":null"),
        "{json}"
    );
    assert!(judged(c).iter().any(|p| p.contains("spread")));
}

#[test]
fn correlation_gap_of_a_two_column_case() {
    // Real rows: y = x (r = 1); synthetic rows: y = -x (r = -1): a gap of 2.
    let x = array![
        [0.0f32, 0.0],
        [1.0, 1.0],
        [2.0, 2.0],
        [0.0, 2.0],
        [1.0, 1.0],
        [2.0, 0.0]
    ];
    let y = ["a"; 6];
    let synthetic = [false, false, false, true, true, true];
    let r = report(
        &Device::Cpu,
        &rows(&x, &y, &synthetic),
        &Columns::numbered(2, 0),
    )
    .unwrap();
    let g = r.classes[0].correlation.as_ref().unwrap();
    assert!((g.max - 2.0).abs() < 1e-9 && (g.mean - 2.0).abs() < 1e-9);
    assert_eq!(g.pair, ("x0".to_string(), "x1".to_string()));
}

#[test]
fn categories_are_compared_by_total_variation_and_count_in_distances() {
    let x = Array2::<f32>::zeros((6, 0));
    let codes = array![[0u32], [1], [0], [1], [1], [1]];
    let levels = [2u32];
    let y = ["a"; 6];
    let synthetic = [false, false, false, false, true, true];
    let rows = Rows {
        x: x.view(),
        categories: Categories {
            codes: codes.view(),
            levels: &levels,
        },
        y: &y,
        synthetic: &synthetic,
    };
    let r = report(&Device::Cpu, &rows, &Columns::numbered(0, 1)).unwrap();
    let c = &r.classes[0];
    // Real: half and half; synthetic: all category 1.
    assert!((c.categorical[0].total_variation - 0.5).abs() < 1e-12);
    assert_eq!(c.closeness.as_ref().unwrap().exact_copies, 1.0);
}

#[test]
fn no_synthetic_rows_and_bad_shapes_are_clear_errors() {
    let x = array![[0.0f32], [1.0]];
    let y = ["a", "b"];
    let e = report(
        &Device::Cpu,
        &rows(&x, &y, &[false, false]),
        &Columns::numbered(1, 0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no synthetic rows"), "{e}");
    let e = report(
        &Device::Cpu,
        &rows(&x, &y, &[false]),
        &Columns::numbered(1, 0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("synthetic marks"), "{e}");
}

#[test]
fn a_class_with_one_real_row_is_reported_without_distances() {
    let x = array![[0.0f32], [1.0], [5.0], [6.0]];
    let y = ["a", "a", "b", "b"];
    let synthetic = [false, true, false, false];
    let r = report(
        &Device::Cpu,
        &rows(&x, &y, &synthetic),
        &Columns::numbered(1, 0),
    )
    .unwrap();
    let c = &r.classes[0];
    assert!(c.closeness.is_none());
    assert!(c.verdict.contains("one real row"), "{}", c.verdict);
}

#[test]
fn a_picture_is_a_png_of_the_stated_size() {
    let n = 200;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f32 + j as f32);
    let y: Vec<&str> = (0..n).map(|i| if i % 3 == 0 { "b" } else { "a" }).collect();
    let synthetic: Vec<bool> = (0..n).map(|i| i >= 150 && y[i] == "a").collect();
    let r = report(
        &Device::Cpu,
        &rows(&x, &y, &synthetic),
        &Columns::numbered(3, 0),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = r.draw(dir.path()).unwrap();
    assert_eq!(files, vec![dir.path().join("class-a.png")]);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&files[0]).unwrap(),
    ));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (1600, 900));
    let text = r.text(false);
    assert!(text.starts_with("class a: "), "{text}");
    assert!(text.contains("verdict:") && text.contains("KS"), "{text}");
}
