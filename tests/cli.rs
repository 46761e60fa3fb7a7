//! The `smrt` binary on small files, including its error paths.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with the CPU engine unless the arguments choose (so stderr carries only
/// smrt's own lines, not the notice of `auto` or a driver's messages).
fn smrt(args: &[&str]) -> Output {
    smrt_with(args, &[("SMRT_BACKEND", "cpu")])
}

fn smrt_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smrt"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run smrt")
}

/// The synthetic rows written after the input's text, as (width, label, height).
fn synthetic_rows(written: &str, input: &str) -> Vec<(f32, String, f32)> {
    assert!(
        written.starts_with(input),
        "input rows must come first, byte for byte"
    );
    written[input.len()..]
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 3, "{line}");
            (
                f[0].parse().unwrap(),
                f[1].to_string(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

/// A scratch folder for one test, removed when the test ends (pass or fail).
struct Scratch(tempfile::TempDir);

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

fn dir(name: &str) -> Scratch {
    Scratch(
        tempfile::Builder::new()
            .prefix(&format!("smrt-cli-{name}-"))
            .tempdir()
            .expect("a scratch folder"),
    )
}

/// 40 rows of "common" and 8 of "rare", label column in the middle, with irregular number text.
fn write_input(path: &Path) -> String {
    let mut s = String::from("width,kind,height\n");
    for i in 0..48 {
        let (label, base) = if i < 40 {
            ("common", 0.0)
        } else {
            ("rare", 10.0)
        };
        s.push_str(&format!(
            "{:.3},{label},{}\n",
            base + (i % 7) as f64 * 0.25,
            base + (i % 5) as f64 * 1.5e0
        ));
    }
    std::fs::write(path, &s).unwrap();
    s
}

fn assert_failed_cleanly(out: &Output, output_file: &Path, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(!output_file.exists(), "no output file on failure");
}

#[test]
fn balance_keeps_input_rows_and_reaches_the_ratio() {
    let d = dir("ok");
    let (input, output) = (d.join("in.csv"), d.join("out.csv"));
    let text = write_input(&input);
    let args = [
        "balance",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    let out = smrt(
        &[
            &args[..],
            &[
                "--label", "kind", "--ratio", "0.5", "--seed", "3", "--epochs", "20",
            ],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(
        written.starts_with(&text),
        "input rows must come first, byte for byte"
    );
    let extra: Vec<&str> = written[text.len()..].lines().collect();
    assert_eq!(extra.len(), 12, "8 rare rows grow to floor(0.5 * 40) = 20");
    for line in extra {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1], "rare");
        let w: f32 = f[0].parse().unwrap();
        assert!(
            (5.0..15.0).contains(&w),
            "synthetic width {w} far from the rare class"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&input).unwrap(),
        text,
        "input unchanged"
    );

    // Same seed, same file; the default label is the last column.
    let again = d.join("again.csv");
    let out = smrt(&[
        "balance",
        "--input",
        input.to_str().unwrap(),
        "--output",
        again.to_str().unwrap(),
        "--label",
        "kind",
        "--ratio",
        "0.5",
        "--seed",
        "3",
        "--epochs",
        "20",
    ]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&output).unwrap()
    );
}

#[test]
fn label_defaults_to_last_column() {
    let d = dir("last");
    let (input, output) = (d.join("in.csv"), d.join("out.csv"));
    std::fs::write(
        &input,
        "a,b,y\n1,2,x\n1.5,2.5,x\n2,2,x\n0.5,1,x\n9,9,z\n9.5,8,z\n",
    )
    .unwrap();
    let out = smrt(&[
        "balance",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--epochs",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&output).unwrap();
    assert_eq!(text.lines().filter(|l| l.ends_with(",z")).count(), 4);
    assert_eq!(text.lines().filter(|l| l.ends_with(",x")).count(), 4);
}

#[test]
fn bad_flags_and_files_fail_cleanly() {
    let d = dir("bad");
    let (input, output) = (d.join("in.csv"), d.join("out.csv"));
    write_input(&input);
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());

    // Bad flags: (extra arguments, what the message names).
    let flag_cases: [(&[&str], &str); 4] = [
        (&["--frobnicate"], "--frobnicate"),
        (&["--ratio", "1.5"], "ratio"),
        (&["--ratio", "abc"], "abc"),
        (&["--label", "nope"], "nope"),
    ];
    for (extra, needle) in flag_cases {
        let args = [&["balance", "--input", i, "--output", o][..], extra].concat();
        assert_failed_cleanly(&smrt(&args), &output, needle);
    }
    let missing = d.join("missing.csv");
    let missing = missing.to_str().unwrap();
    let out = smrt(&["balance", "--input", missing, "--output", o]);
    assert_failed_cleanly(&out, &output, "missing.csv");
    // A missing output folder is named before any work (the flags would fail the work).
    let nowhere = d.join("no-folder").join("out.csv");
    let needle = format!(
        "the folder {} does not exist",
        d.join("no-folder").display()
    );
    let (n, lonely) = (nowhere.to_str().unwrap(), ["--label", "height"]);
    let out = smrt(&[&["balance", "--input", i, "--output", n][..], &lonely].concat());
    assert_failed_cleanly(&out, &nowhere, &needle);
    let provenance = ["--provenance", n, "--label", "height"];
    let out = smrt(&[&["balance", "--input", i, "--output", o][..], &provenance].concat());
    assert_failed_cleanly(&out, &output, &needle);

    // Bad files: (name, contents, what the message names).
    let file_cases = [
        ("malformed.csv", "a,y\n1,x\n2,x\ninf,x\n", "line 4"),
        ("ragged.csv", "a,b,y\n1,2,x\n3,z\n", "line 3"),
        ("lonely.csv", "a,y\n1,x\n2,x\n3,x\n4,z\n", "\"z\" has 1 row"),
        ("empty.csv", "a,y\n", "no rows"),
    ];
    for (name, contents, needle) in file_cases {
        let path = d.join(name);
        std::fs::write(&path, contents).unwrap();
        let out = smrt(&["balance", "--input", path.to_str().unwrap(), "--output", o]);
        assert_failed_cleanly(&out, &output, needle);
    }

    // The input is never the output.
    let before = std::fs::read(&input).unwrap();
    let out = smrt(&["balance", "--input", i, "--output", i]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input"));
    assert_eq!(std::fs::read(&input).unwrap(), before);
    // Nothing left behind in the folder (no temporary files).
    let mut names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "empty.csv",
            "in.csv",
            "lonely.csv",
            "malformed.csv",
            "ragged.csv"
        ]
    );
}

#[test]
fn demo_prints_counts_before_and_after_and_draws_digits() {
    let d = dir("demo");
    let out = smrt(&["demo", "--epochs", "20", "--out", d.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let row0 = text
        .lines()
        .find(|l| l.trim_start().starts_with("0 "))
        .expect("a row for digit 0");
    let nums: Vec<usize> = row0
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(nums, vec![0, 18, 183]);
    assert!(text.contains("synthetic rows"));
    assert!(text.contains("SMOTE (k = 5): 193 synthetic rows"), "{text}");
    // Three rows of twelve 48 x 48 images with 4-pixel gaps, dark ink somewhere in each row.
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(d.join("digits.png")).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (12 * 52 + 4, 3 * 52 + 4));
    for r in 0..3 {
        let band = &buf[(4 + r * 52) * info.width as usize..(52 + r * 52) * info.width as usize];
        assert!(band.iter().any(|&p| p < 64), "row {r} has ink");
    }
}

#[test]
fn balance_on_the_gpu_backend_agrees_with_the_cpu() {
    if smrt::engine::adapters().is_empty() {
        assert!(
            std::env::var_os("SMRT_TEST_REQUIRE_GPU").is_none(),
            "SMRT_TEST_REQUIRE_GPU is set but wgpu finds no adapter"
        );
        eprintln!("skipped: wgpu finds no GPU adapter on this machine");
        return;
    }
    let d = dir("gpu");
    let input = d.join("in.csv");
    let text = write_input(&input);
    let mut rows = Vec::new();
    for backend in ["gpu", "cpu"] {
        let output = d.join(format!("out-{backend}.csv"));
        let args = [
            "balance",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--label",
            "kind",
            "--seed",
            "3",
            "--epochs",
            "30",
            "--backend",
            backend,
        ];
        // An explicit --backend wins over the environment.
        let out = smrt_with(&args, &[("SMRT_BACKEND", "cpu")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let want = if backend == "gpu" {
            "on gpu: "
        } else {
            "on cpu"
        };
        assert!(err.contains(want), "summary names the engine: {err}");
        rows.push(synthetic_rows(
            &std::fs::read_to_string(&output).unwrap(),
            &text,
        ));
    }
    let (gpu, cpu) = (&rows[0], &rows[1]);
    assert_eq!(gpu.len(), 32, "8 rare rows grow to the 40 of the majority");
    assert_eq!(gpu.len(), cpu.len());
    for (g, c) in gpu.iter().zip(cpu) {
        assert_eq!(g.1, "rare");
        assert!(
            (g.0 - c.0).abs() < 0.05 && (g.2 - c.2).abs() < 0.05,
            "same seed, either engine: {g:?} vs {c:?}"
        );
    }
}

#[test]
fn backend_choices_are_checked() {
    let d = dir("backend");
    let (input, output) = (d.join("in.csv"), d.join("out.csv"));
    write_input(&input);
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let out = smrt(&[
        "balance",
        "--input",
        i,
        "--output",
        o,
        "--backend",
        "quantum",
    ]);
    assert_failed_cleanly(&out, &output, "quantum");
    let out = smrt_with(
        &["balance", "--input", i, "--output", o, "--label", "kind"],
        &[("SMRT_BACKEND", "abacus")],
    );
    assert_failed_cleanly(&out, &output, "SMRT_BACKEND");
}

#[test]
fn info_lists_adapters_and_the_choice() {
    let out = smrt_with(&["info"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("smrt "), "{text}");
    assert!(text.contains("adapters"), "{text}");
    assert!(text.contains("auto picks: "), "{text}");
    let found = smrt::engine::adapters();
    for a in &found {
        assert!(text.contains(&a.name), "{} missing from {text}", a.name);
    }
}

#[test]
fn every_method_balances_the_file() {
    let d = dir("methods");
    let input = d.join("in.csv");
    let text = write_input(&input); // 40 common, 8 rare
    let input_lines: Vec<&str> = text.lines().collect();
    let cases: [(&[&str], usize, usize); 4] = [
        (&["--method", "smote", "--k-neighbors", "3"], 40, 40),
        (&["--method", "random-over"], 40, 40),
        (&["--method", "random-over", "--shrinkage", "0.5"], 40, 40),
        (&["--method", "random-under", "--ratio", "0.5"], 16, 8),
    ];
    for (extra, common, rare) in cases {
        let output = d.join("out.csv");
        let base = [
            "balance",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--label",
            "kind",
            "--seed",
            "2",
        ];
        let out = smrt(&[&base[..], extra].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{extra:?}: {err}");
        let written = std::fs::read_to_string(&output).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines[0], input_lines[0], "header");
        let count = |l: &str| {
            lines
                .iter()
                .filter(|s| s.contains(&format!(",{l},")))
                .count()
        };
        assert_eq!(
            (count("common"), count("rare")),
            (common, rare),
            "{extra:?}"
        );
        if extra.contains(&"random-under") {
            // Every row written is an input row, byte for byte.
            assert!(lines.iter().all(|l| input_lines.contains(l)), "{written}");
        } else {
            assert!(written.starts_with(&text), "{extra:?}: input rows first");
        }
        if extra.contains(&"--shrinkage") {
            let copies = lines[49..]
                .iter()
                .filter(|l| input_lines.contains(l))
                .count();
            assert!(copies < 5, "shrinkage jitters the copies ({copies} exact)");
        }
        std::fs::remove_file(&output).unwrap();
    }
}

#[test]
fn method_flags_are_checked() {
    let d = dir("method-flags");
    let (input, output) = (d.join("in.csv"), d.join("out.csv"));
    write_input(&input);
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let base = ["balance", "--input", i, "--output", o, "--label", "kind"];
    // A setting's error names the flag that gives it.
    let cases: [(&[&str], &str); 11] = [
        (&["--method", "adasyn"], "adasyn"),
        (
            &["--method", "smote", "--shrinkage", "0.5"],
            "--shrinkage applies to --method random-over only",
        ),
        (&["--method", "smote", "--epochs", "5"], "epochs"),
        (&["--min-delta", "0.1"], "give --patience too"),
        (
            &["--method", "smote", "--k-neighbors", "0"],
            "`--k-neighbors`",
        ),
        (
            &["--method", "random-over", "--shrinkage", "-1"],
            "`--shrinkage`",
        ),
        (&["--sample", "1"], "`--sample`"),
        (&["--patience", "0"], "`--patience`"),
        (&["--strategy", "common=3"], "`--strategy`"),
        (&["--beta", "-1"], "`--beta`: -1"),
        (&["--batch-size", "0"], "`--batch-size`"),
    ];
    for (extra, needle) in cases {
        assert_failed_cleanly(&smrt(&[&base[..], extra].concat()), &output, needle);
    }
}

#[test]
fn fit_shows_and_takes_only_smrts_flags() {
    let help = smrt(&["fit", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--epochs") && text.contains("--sample"),
        "{text}"
    );
    for other in ["--method", "--k-neighbors", "--shrinkage", "--shuffle"] {
        assert!(!text.contains(other), "fit --help lists {other}");
    }
    let d = dir("fit-flags");
    let input = d.join("in.csv");
    write_input(&input);
    let models = d.join("models");
    for (extra, needle) in [
        (&["--k-neighbors", "3"][..], "--k-neighbors applies"),
        (&["--shuffle"][..], "fit writes no rows"),
        (&["--method", "smote"][..], "--method does not apply"),
    ] {
        let mut args = vec![
            "fit",
            "--input",
            input.to_str().unwrap(),
            "--label",
            "kind",
            "--out",
            models.to_str().unwrap(),
        ];
        args.extend(extra);
        assert_failed_cleanly(&smrt(&args), &models, needle);
    }
}

#[test]
fn fit_then_generate_and_reuse_saved_models() {
    let d = dir("models");
    let input = d.join("in.csv");
    write_input(&input); // 40 common, 8 rare; columns width, kind, height
    let (i, models) = (input.to_str().unwrap(), d.join("models"));
    let m = models.to_str().unwrap();
    let out = smrt(&[
        "fit", "--input", i, "--label", "kind", "--out", m, "--epochs", "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(models.join("smrt-models.json").exists());

    // generate streams N rows of the class, header = features then label.
    let gen = d.join("gen.csv");
    let g = gen.to_str().unwrap();
    let out = smrt(&[
        "generate", "--models", m, "--class", "rare", "--n", "70000", "--output", g,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&gen).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "width,height,kind");
    assert_eq!(lines.len(), 70_001);
    assert!(lines[1..].iter().all(|l| l.ends_with(",rare")));

    // balance --save-models, then --models reuses them: the same file.
    let (a, b) = (d.join("a.csv"), d.join("b.csv"));
    let saved = d.join("saved");
    let base = [
        "balance", "--input", i, "--label", "kind", "--epochs", "20", "--output",
    ];
    let out = smrt(
        &[
            &base[..],
            &[
                a.to_str().unwrap(),
                "--save-models",
                saved.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = smrt(
        &[
            &base[..],
            &[b.to_str().unwrap(), "--models", saved.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Errors: a class without a model, models of another data set, a damaged index.
    let missing = d.join("x.csv");
    let out = smrt(&[
        "generate",
        "--models",
        m,
        "--class",
        "common",
        "--n",
        "5",
        "--output",
        missing.to_str().unwrap(),
    ]);
    assert_failed_cleanly(&out, &missing, "no model for class \"common\"");
    let other = d.join("other.csv");
    std::fs::write(&other, "u,v,kind\n1,2,x\n3,4,x\n5,6,y\n7,8,y\n9,9,y\n").unwrap();
    let out = smrt(&[
        "balance",
        "--input",
        other.to_str().unwrap(),
        "--output",
        missing.to_str().unwrap(),
        "--models",
        m,
    ]);
    assert_failed_cleanly(&out, &missing, "fitted on columns");
    std::fs::write(
        models.join("smrt-models.json"),
        "{\"format\": \"smrt-models\"}",
    )
    .unwrap();
    let out = smrt(&[
        "generate",
        "--models",
        m,
        "--class",
        "rare",
        "--n",
        "5",
        "--output",
        missing.to_str().unwrap(),
    ]);
    assert_failed_cleanly(&out, &missing, "smrt-models.json");
    let out = smrt(&[
        "fit", "--input", i, "--label", "kind", "--out", m, "--class", "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown class"));
}

/// The data rows of a CSV file as numbers (label column dropped), for comparing values.
fn numeric_rows(text: &str, label_col: usize) -> Vec<Vec<f64>> {
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|&(j, _)| j != label_col)
                .map(|(_, v)| v.parse().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn generate_draws_as_the_models_were_fitted_unless_told_otherwise() {
    let d = dir("generate-modes");
    let input = d.join("in.csv");
    let text = write_input(&input); // 40 common, 8 rare; columns width, kind, height
    let (i, models) = (input.to_str().unwrap(), d.join("models"));
    let m = models.to_str().unwrap();
    let fit = [
        "fit",
        "--input",
        i,
        "--label",
        "kind",
        "--out",
        m,
        "--epochs",
        "20",
        "--generation",
        "residual",
        "--temperature",
        "0",
    ];
    let out = smrt(&fit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(models.join("smrt-models.json")).unwrap();
    assert!(index.contains("\"residual\""), "{index}");

    // Residual draws start from real rows: without them, a clear error and no output.
    let gen = d.join("gen.csv");
    let g = gen.to_str().unwrap();
    let draw = [
        "generate", "--models", m, "--class", "rare", "--n", "50", "--output", g,
    ];
    assert_failed_cleanly(&smrt(&draw), &gen, "--input");

    // With them, at temperature 0 every row is a real row of the class.
    let real: Vec<Vec<f64>> = numeric_rows(&text, 1).split_off(40);
    let out = smrt(&[&draw[..], &["--input", i, "--label", "kind"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = numeric_rows(&std::fs::read_to_string(&gen).unwrap(), 2);
    assert_eq!(rows.len(), 50);
    for row in &rows {
        assert!(
            real.iter()
                .any(|r| r.iter().zip(row).all(|(a, b)| (a - b).abs() < 1e-4)),
            "{row:?} is not a rare row"
        );
    }

    // A flag wins over the saved mode: prior draws need no rows and are not copies.
    let out = smrt(&[&draw[..], &["--generation", "prior"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = numeric_rows(&std::fs::read_to_string(&gen).unwrap(), 2);
    let copies = rows
        .iter()
        .filter(|row| {
            real.iter()
                .any(|r| r.iter().zip(*row).all(|(a, b)| (a - b).abs() < 1e-4))
        })
        .count();
    assert!(
        copies < rows.len() / 2,
        "{copies} of {} prior rows are copies",
        rows.len()
    );

    // A file without rows of the class is refused by name.
    std::fs::remove_file(&gen).unwrap();
    let other = d.join("other.csv");
    std::fs::write(&other, "width,kind,height\n1,common,2\n").unwrap();
    let no_rows = [
        &draw[..],
        &["--input", other.to_str().unwrap(), "--label", "kind"],
    ]
    .concat();
    assert_failed_cleanly(&smrt(&no_rows), &gen, "no rows of class \"rare\"");
}

#[test]
fn mixed_tables_keep_input_rows_and_draw_categories_from_the_class() {
    let d = dir("mixed");
    let input = d.join("in.csv");
    // Text columns with quotes, case and missing values; 30 "stay" rows, 6 "churn".
    let mut text = String::from("age,plan,\"city, country\",active,label\n");
    for i in 0..36 {
        let churn = i >= 30;
        let plan = ["Basic", "basic", "PRO", ""][i % 4];
        let city = if churn {
            ["\"Lyon, FR\"", "NA"][i % 2]
        } else {
            ["\"Paris, FR\"", "Oslo"][i % 2]
        };
        let active = ["yes", "no"][i % 3 % 2];
        let label = if churn { "churn" } else { "stay" };
        text += &format!("{},{plan},{city},{active},{label}\n", 20 + i);
    }
    std::fs::write(&input, &text).unwrap();
    let i = input.to_str().unwrap();
    let churn_values: Vec<Vec<String>> = {
        let mut r = csv::Reader::from_path(&input).unwrap();
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        (1..4)
            .map(|c| rows[30..].iter().map(|rec| rec[c].to_string()).collect())
            .collect()
    };
    for method in ["random-over", "smote", "smrt", "random-under"] {
        let output = d.join(format!("{method}.csv"));
        let o = output.to_str().unwrap();
        let out = smrt(&[
            "balance", "--input", i, "--output", o, "--method", method, "--quiet",
        ]);
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::read_to_string(&output).unwrap();
        if method == "random-under" {
            // Kept rows are input lines, byte for byte.
            assert!(
                written.lines().all(|l| text.lines().any(|t| t == l)),
                "{written}"
            );
            continue;
        }
        // Input rows first, byte for byte; then 24 synthetic churn rows.
        assert!(written.starts_with(&text), "{method}: input rows changed");
        let mut r = csv::Reader::from_reader(written.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 60);
        for rec in &rows[36..] {
            assert_eq!(&rec[4], "churn");
            rec[0].parse::<f32>().expect("age is a number");
            for (c, seen) in (1..4).zip(&churn_values) {
                assert!(
                    seen.iter().any(|v| v == &rec[c]),
                    "{method}: {:?} never occurs in column {c} of the class",
                    &rec[c]
                );
            }
        }
    }
    // The summary counts the categorical columns.
    let counted = d.join("counted.csv");
    let out = smrt(&[
        "balance",
        "--input",
        i,
        "--output",
        counted.to_str().unwrap(),
        "--method",
        "random-over",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 of 4 feature columns categorical"), "{err}");
    // --numeric on a text column names the line and the column; NPY cannot hold categories.
    let output = d.join("never.csv");
    let o = output.to_str().unwrap();
    let out = smrt(&["balance", "--input", i, "--output", o, "--numeric", "plan"]);
    assert_failed_cleanly(&out, &output, "line 2: column \"plan\"");
    let npy = d.join("never.npy");
    let out = smrt(&[
        "balance",
        "--input",
        i,
        "--output",
        npy.to_str().unwrap(),
        "--method",
        "smote",
    ]);
    assert_failed_cleanly(&out, &npy, ".npy");
    // Saved models keep the categories: fit, generate, and reuse by --models.
    let models = d.join("models");
    let m = models.to_str().unwrap();
    let out = smrt(&["fit", "--input", i, "--out", m, "--epochs", "20", "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(models.join("smrt-models.json")).unwrap();
    assert!(index.contains("\"Lyon, FR\""), "{index}");
    let gen = d.join("gen.csv");
    let out = smrt(&[
        "generate",
        "--models",
        m,
        "--class",
        "churn",
        "--n",
        "40",
        "--output",
        gen.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = csv::Reader::from_path(&gen).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        vec!["age", "plan", "city, country", "active", "label"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 40);
    for rec in &rows {
        rec[0].parse::<f32>().expect("age is a number");
        for (c, seen) in (1..4).zip(&churn_values) {
            assert!(
                seen.iter().any(|v| v == &rec[c]),
                "{:?} in column {c}",
                &rec[c]
            );
        }
    }
    let (a, b) = (d.join("a.csv"), d.join("b.csv"));
    let saved = d.join("saved");
    let base = [
        "balance", "--input", i, "--epochs", "20", "--quiet", "--output",
    ];
    let save = [
        a.to_str().unwrap(),
        "--save-models",
        saved.to_str().unwrap(),
    ];
    let out = smrt(&[&base[..], &save[..]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reuse = [b.to_str().unwrap(), "--models", saved.to_str().unwrap()];
    let out = smrt(&[&base[..], &reuse[..]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // A category the models never saw is refused by name.
    let other = d.join("other.csv");
    std::fs::write(&other, text.replacen("Oslo", "Berlin", 1)).unwrap();
    let out = smrt(&[
        "balance",
        "--input",
        other.to_str().unwrap(),
        "--output",
        o,
        "--models",
        saved.to_str().unwrap(),
    ]);
    assert_failed_cleanly(&out, &output, "\"Berlin\" of column \"city, country\"");
    let out = smrt(&[
        "balance",
        "--input",
        i,
        "--output",
        o,
        "--categorical",
        "nope",
    ]);
    assert_failed_cleanly(&out, &output, "\"nope\"");
}

#[test]
fn strategy_config_marks_and_provenance() {
    let d = dir("extras");
    let input = d.join("in.csv");
    let text = write_input(&input); // 40 common, 8 rare
    let (i, output) = (input.to_str().unwrap(), d.join("out.csv"));
    let o = output.to_str().unwrap();
    let run = |extra: &[&str]| {
        let args = [
            &["balance", "--input", i, "--output", o, "--label", "kind"][..],
            extra,
        ]
        .concat();
        let out = smrt(&args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            std::fs::read_to_string(&output).unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let rare = |t: &str| t.lines().filter(|l| l.contains(",rare")).count();

    // --strategy CLASS=COUNT, with random-over for speed.
    let (t, _) = run(&["--method", "random-over", "--strategy", "rare=13"]);
    assert_eq!(rare(&t), 13);
    let (t, _) = run(&["--method", "random-over", "--strategy", "minority"]);
    assert_eq!(rare(&t), 40);

    // A TOML config; a flag wins over it.
    let config = d.join("smrt.toml");
    std::fs::write(
        &config,
        "method = \"random-over\"\nstrategy = \"rare=11\"\nseed = 4\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (t, _) = run(&["--config", c]);
    assert_eq!(rare(&t), 11);
    let (t, _) = run(&["--config", c, "--strategy", "rare=20"]);
    assert_eq!(rare(&t), 20);
    std::fs::write(&config, "epochs = 5\nfrobnicate = 1\n").unwrap();
    let out = smrt(&["balance", "--input", i, "--output", o, "--config", c]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));

    // The generation settings in TOML: residual rows at temperature 0 are real rows of the class.
    std::fs::write(
        &config,
        "generation = \"residual\"\ntemperature = 0.0\nlatent = 0.5\nepochs = 5\nmin-steps = 0\n",
    )
    .unwrap();
    let (t, _) = run(&["--config", c, "--quiet"]);
    let values = |line: &str| -> (f64, f64) {
        let f: Vec<&str> = line.split(',').collect();
        (f[0].parse().unwrap(), f[2].parse().unwrap())
    };
    let lines: Vec<&str> = t.lines().skip(1).collect();
    let real: Vec<(f64, f64)> = lines[..48]
        .iter()
        .filter(|l| l.contains(",rare"))
        .map(|l| values(l))
        .collect();
    assert_eq!(lines.len(), 80);
    for l in &lines[48..] {
        assert!(real.contains(&values(l)), "{l} is not a rare input row");
    }
    let (bad_t, _) = (
        smrt(&[
            "balance",
            "--input",
            i,
            "--output",
            o,
            "--temperature",
            "-1",
        ]),
        (),
    );
    assert_eq!(bad_t.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_t.stderr).contains("temperature"));

    // --mark-synthetic and --provenance.
    let prov = d.join("prov.csv");
    let (t, err) = run(&[
        "--method",
        "smote",
        "--k-neighbors",
        "3",
        "--mark-synthetic",
        "synthetic",
        "--provenance",
        prov.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(err.is_empty(), "--quiet: {err}");
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "width,kind,height,synthetic");
    assert!(lines[1..49].iter().all(|l| l.ends_with(",0")));
    assert!(lines[49..].iter().all(|l| l.ends_with(",1")));
    assert_eq!(lines.len(), 81);
    let p = std::fs::read_to_string(&prov).unwrap();
    let p: Vec<&str> = p.lines().collect();
    assert_eq!(p[0], "output_row,source_row");
    assert_eq!(p.len(), 33);
    for line in &p[1..] {
        let (row, src) = line.split_once(',').unwrap();
        assert!(row.parse::<usize>().unwrap() >= 48);
        assert!(
            (40..48).contains(&src.parse::<usize>().unwrap()),
            "source {src} is a rare row"
        );
    }

    // -v prints a per-class table.
    let (_, err) = run(&["--method", "random-over", "-v"]);
    assert!(err.contains("before") && err.contains("rare"), "{err}");

    // A semicolon-separated file with a byte-order mark and CRLF line ends.
    let semi = d.join("semi.csv");
    let body: String = text.replace(',', ";").replace('\n', "\r\n");
    std::fs::write(&semi, format!("\u{feff}{body}")).unwrap();
    let out = smrt(&[
        "balance",
        "--input",
        semi.to_str().unwrap(),
        "--output",
        o,
        "--label",
        "kind",
        "--delimiter",
        ";",
        "--method",
        "random-over",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = std::fs::read_to_string(&output).unwrap();
    assert!(t.starts_with("width;kind;height"), "{t}");
    assert_eq!(t.lines().filter(|l| l.contains(";rare;")).count(), 40);
}

#[test]
fn balance_ends_with_a_summary_table() {
    let d = dir("summary");
    let (input, output) = (d.join("in.csv"), d.join("out.csv"));
    write_input(&input);
    let out = smrt(&[
        "balance",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--label",
        "kind",
        "--epochs",
        "7",
        "--min-steps",
        "0",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("class") && lines[0].ends_with("engine"),
        "{err}"
    );
    let rare: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("rare"))
        .unwrap()
        .split_whitespace()
        .collect();
    // class, before, after, epochs, final loss, time, "s", engine
    assert_eq!(&rare[..4], &["rare", "8", "40", "7"], "{err}");
    assert_eq!(rare.last(), Some(&"cpu"));
    assert!(lines.last().unwrap().contains("rows in"), "{err}");
}

#[test]
fn bench_prints_a_table_and_writes_json() {
    let d = dir("bench");
    let json = d.join("bench.json");
    let out = smrt(&[
        "bench",
        "--quick",
        "--backend",
        "cpu",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("bench"), "{table}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let figures = doc["figures"].as_array().unwrap();
    let names: Vec<&str> = figures
        .iter()
        .map(|f| f["bench"].as_str().unwrap())
        .collect();
    for want in [
        "matmul 256x64x64",
        "train 1000x64 h128",
        "generate 100000",
        "smote 10000x32",
        "smrt 10000x32",
        "smrt 1 x 100x32 classes",
        "smrt 10 x 100x32 classes",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(want)),
            "{want} in {names:?}"
        );
    }
    for f in figures {
        assert_eq!(f["engine"], "cpu");
        assert!(f["value"].as_f64().unwrap() > 0.0, "{f}");
        assert!(table.contains(f["bench"].as_str().unwrap()));
    }
}

#[test]
fn npy_in_and_out() {
    use ndarray_npy::{ReadNpyExt, WriteNpyExt};
    let d = dir("npy");
    let (input, output) = (d.join("in.npy"), d.join("out.npy"));
    // 30 rows of class 0 and 6 of class 2, label in column 1 of 3.
    let x = ndarray::Array2::from_shape_fn((36, 3), |(i, j)| match j {
        1 => {
            if i < 30 {
                0.0
            } else {
                2.0
            }
        }
        _ => i as f64 * 0.1 + j as f64 + 1e-9,
    });
    x.write_npy(std::fs::File::create(&input).unwrap()).unwrap();
    let out = smrt(&[
        "balance",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--label",
        "1",
        "--method",
        "smote",
        "--k-neighbors",
        "3",
        "--mark-synthetic",
        "s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = ndarray::Array2::<f64>::read_npy(std::fs::File::open(&output).unwrap()).unwrap();
    assert_eq!(got.dim(), (60, 4));
    assert_eq!(
        got.slice(ndarray::s![..36, ..3]),
        x,
        "input rows exactly as read"
    );
    assert!(got.slice(ndarray::s![36.., 1]).iter().all(|&l| l == 2.0));
    assert_eq!(got.column(3).sum(), 24.0, "the mark column");
    // A CSV with text labels cannot become .npy: a clear error, no file.
    let csv_in = d.join("in.csv");
    write_input(&csv_in);
    let bad = d.join("bad.npy");
    let out = smrt(&[
        "balance",
        "--input",
        csv_in.to_str().unwrap(),
        "--output",
        bad.to_str().unwrap(),
        "--label",
        "kind",
        "--method",
        "random-over",
    ]);
    assert_failed_cleanly(&out, &bad, "not one");
}

#[test]
fn generate_writes_npy_with_the_values_of_its_csv() {
    use ndarray_npy::{ReadNpyExt, WriteNpyExt};
    let d = dir("generate-npy");
    let (input, models) = (d.join("in.npy"), d.join("models"));
    // 40 rows of class 0 and 8 of class 3; the label last.
    let x = ndarray::Array2::from_shape_fn((48, 3), |(i, j)| match (j, i < 40) {
        (2, true) => 0.0,
        (2, false) => 3.0,
        _ => (i % 7) as f64 * 0.25 + j as f64 * 1.5,
    });
    x.write_npy(std::fs::File::create(&input).unwrap()).unwrap();
    let m = models.to_str().unwrap();
    let fit = [
        "fit",
        "--input",
        input.to_str().unwrap(),
        "--out",
        m,
        "--epochs",
        "20",
        "--quiet",
    ];
    let out = smrt(&fit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generate = |to: &Path, extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--models",
            m,
            "--class",
            "3",
            "--n",
            "25",
            "--seed",
            "5",
            "--quiet",
            "--backend",
            "cpu",
            "--output",
        ];
        args.push(to.to_str().unwrap());
        args.extend(extra);
        smrt(&args)
    };
    let (csv, npy) = (d.join("rows.csv"), d.join("rows.npy"));
    for to in [&csv, &npy] {
        let out = generate(to, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = ndarray::Array2::<f64>::read_npy(std::fs::File::open(&npy).unwrap()).unwrap();
    assert_eq!(got.dim(), (25, 3));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("0,1,2"),
        "columns by index, the label last"
    );
    for (line, row) in lines.zip(got.rows()) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[2], "3");
        assert_eq!(row[2], 3.0, "the label column");
        for c in 0..2 {
            let value: f32 = fields[c].parse().unwrap();
            assert_eq!(
                row[c],
                f64::from(value),
                "row {line}: the CSV's value, exactly"
            );
        }
    }
    // A .npy file cannot be cut into shards, and holds numbers only.
    let cut = d.join("cut.npy");
    assert_failed_cleanly(&generate(&cut, &["--shard", "1/2"]), &cut, ".npy");
    let text_input = d.join("text.csv");
    write_input(&text_input);
    let text_models = d.join("text-models");
    let out = smrt(&[
        "fit",
        "--input",
        text_input.to_str().unwrap(),
        "--label",
        "kind",
        "--out",
        text_models.to_str().unwrap(),
        "--epochs",
        "20",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = d.join("bad.npy");
    let out = smrt(&[
        "generate",
        "--models",
        text_models.to_str().unwrap(),
        "--class",
        "rare",
        "--n",
        "5",
        "--quiet",
        "--output",
        bad.to_str().unwrap(),
    ]);
    assert_failed_cleanly(&out, &bad, "\"rare\" is not one");
}

#[test]
fn quoted_fields_and_shuffled_output_keep_input_rows_intact() {
    let d = dir("quoted");
    let (input, output, prov) = (d.join("in.csv"), d.join("out.csv"), d.join("prov.csv"));
    let mut text = String::from("x,\"the label\",y\n");
    for i in 0..20 {
        let label = if i < 16 {
            "\"plain, with comma\""
        } else {
            "\"say \"\"rare\"\"\""
        };
        text += &format!("{}.5,{label},{}\n", i, i % 4);
    }
    std::fs::write(&input, &text).unwrap();
    let out = smrt(&[
        "balance",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--label",
        "the label",
        "--epochs",
        "5",
        "--shuffle",
        "--provenance",
        prov.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&output).unwrap();
    let mut lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "x,the label,y");
    assert_eq!(lines.len(), 33);
    assert_ne!(
        lines[1..21].join("\n"),
        text.lines().skip(1).collect::<Vec<_>>().join("\n"),
        "shuffled"
    );
    // Every input row is still there, and 12 synthetic rows carry the quoted label.
    let synthetic: Vec<usize> = std::fs::read_to_string(&prov)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(synthetic.len(), 12);
    for &r in &synthetic {
        assert!(
            lines[r + 1].contains("\"say \"\"rare\"\"\""),
            "{}",
            lines[r + 1]
        );
    }
    let mut real: Vec<&str> = (0..32)
        .filter(|r| !synthetic.contains(r))
        .map(|r| lines[r + 1])
        .collect();
    real.sort_unstable();
    lines = text.lines().skip(1).collect();
    lines.sort_unstable();
    assert_eq!(real.len(), 20);
    assert_eq!(
        real.iter().map(|l| l.replace('"', "")).collect::<Vec<_>>(),
        lines.iter().map(|l| l.replace('"', "")).collect::<Vec<_>>()
    );
}

#[test]
fn report_tells_synthetic_rows_by_mark_provenance_or_real_file_alike() {
    let d = dir("report");
    let input = d.join("in.csv");
    write_input(&input);
    let (out, prov, pics) = (d.join("out.csv"), d.join("prov.csv"), d.join("run-report"));
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let ran = smrt(&[
        "balance",
        "--input",
        &p(&input),
        "--output",
        &p(&out),
        "--label",
        "kind",
        "--method",
        "smote",
        "--mark-synthetic",
        "made",
        "--provenance",
        &p(&prov),
        "--report",
        &p(&pics),
        "--quiet",
    ]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    for f in ["report.txt", "report.json", "class-rare.png"] {
        assert!(pics.join(f).is_file(), "{f} in the balance run's report");
    }
    // The same rows marked three ways give the same report.
    let json = d.join("r.json");
    let by_mark = smrt(&[
        "report",
        "--input",
        &p(&out),
        "--label",
        "kind",
        "--synthetic-column",
        "made",
        "--json",
        &p(&json),
    ]);
    assert!(
        by_mark.status.success(),
        "{}",
        String::from_utf8_lossy(&by_mark.stderr)
    );
    let text = String::from_utf8(by_mark.stdout).unwrap();
    assert!(
        text.starts_with("class rare: 8 real rows, 32 synthetic\n"),
        "{text}"
    );
    assert!(
        text.contains("verdict: ") && text.contains("near-copies"),
        "{text}"
    );
    let no_mark = d.join("plain.csv");
    let plain = smrt(&[
        "balance",
        "--input",
        &p(&input),
        "--output",
        &p(&no_mark),
        "--label",
        "kind",
        "--method",
        "smote",
        "--quiet",
    ]);
    assert!(plain.status.success());
    for source in [["--provenance", &p(&prov)], ["--real", &p(&input)]] {
        let r = smrt(&[
            "report",
            "--input",
            &p(&no_mark),
            "--label",
            "kind",
            source[0],
            source[1],
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(String::from_utf8(r.stdout).unwrap(), text, "{}", source[0]);
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let class = &doc["classes"][0];
    assert_eq!(class["class"], "rare");
    assert_eq!(class["synthetic_rows"], 32);
    assert_eq!(class["numeric"].as_array().unwrap().len(), 2);
    assert!(class["closeness"]["near_copies"].as_f64().unwrap() <= 1.0);

    // Random over-sampling copies rows: every synthetic row is an exact copy.
    let copies = d.join("copies.csv");
    let r = smrt(&[
        "balance",
        "--input",
        &p(&input),
        "--output",
        &p(&copies),
        "--label",
        "kind",
        "--method",
        "random-over",
        "--mark-synthetic",
        "made",
        "--quiet",
    ]);
    assert!(r.status.success());
    let r = smrt(&[
        "report",
        "--input",
        &p(&copies),
        "--label",
        "kind",
        "--synthetic-column",
        "made",
    ]);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.contains("verdict: exact copies 100%"), "{text}");
}

#[test]
fn report_takes_the_column_before_a_trailing_mark_as_the_label() {
    let d = dir("report-label");
    let (input, out) = (d.join("in.csv"), d.join("out.csv"));
    let mut s = String::from("a,b,label\n");
    for i in 0..30 {
        let label = if i < 24 { "big" } else { "small" };
        s.push_str(&format!("{},{},{label}\n", i % 7, (i * 3) % 11));
    }
    std::fs::write(&input, s).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let r = smrt(&[
        "balance",
        "--input",
        &p(&input),
        "--output",
        &p(&out),
        "--method",
        "smote",
        "--mark-synthetic",
        "made",
        "--quiet",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = smrt(&["report", "--input", &p(&out), "--synthetic-column", "made"]);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(
        text.starts_with("class small: 6 real rows, 18 synthetic\n"),
        "{text}"
    );
}

#[test]
fn a_repeated_column_name_is_refused_where_a_flag_names_it() {
    let d = dir("repeated-name");
    let input = d.join("in.csv");
    let mut s = String::from("a,a,kind\n");
    for i in 0..30 {
        let kind = if i < 24 { "big" } else { "small" };
        s.push_str(&format!("{},{},{kind}\n", i % 7, (i * 3) % 11));
    }
    std::fs::write(&input, s).unwrap();
    let out = d.join("out.csv");
    let (input_arg, out_arg) = (input.to_str().unwrap(), out.to_str().unwrap());
    let balance = |extra: &[&str]| {
        let mut args = vec![
            "balance", "--input", input_arg, "--output", out_arg, "--quiet",
        ];
        args.extend(extra);
        smrt(&args)
    };
    // Unnamed, the repeat is only a header: the rows balance.
    let r = balance(&["--method", "smote", "--label", "kind"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::remove_file(&out).unwrap();
    let under = [
        "--method",
        "random-under",
        "--label",
        "kind",
        "--row-key",
        "a",
    ];
    assert_failed_cleanly(
        &balance(&under),
        &out,
        "\"a\" names 2 columns (columns 1, 2)",
    );
    for flag in ["--label", "--categorical", "--numeric"] {
        let r = balance(&["--method", "smote", flag, "a"]);
        assert_failed_cleanly(&r, &out, "\"a\" names 2 columns (columns 1, 2)");
    }
    let json = d.join("never.json");
    let report = d.join("report.csv");
    std::fs::write(&report, "x,made,made,kind\n1,0,0,big\n2,1,1,big\n").unwrap();
    let r = smrt(&[
        "report",
        "--input",
        report.to_str().unwrap(),
        "--label",
        "kind",
        "--synthetic-column",
        "made",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_failed_cleanly(&r, &json, "\"made\" names 2 columns (columns 2, 3)");
}

#[test]
fn report_errors_are_one_clear_line() {
    let d = dir("report-bad");
    let input = d.join("in.csv");
    write_input(&input);
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let json = d.join("never.json");
    let cases: [(Vec<String>, &str); 4] = [
        (vec![], "say which rows are synthetic"),
        (
            vec!["--synthetic-column".into(), "nope".into()],
            "\"nope\" is not a feature column",
        ),
        (
            vec!["--synthetic-column".into(), "width".into()],
            "is not 1/0",
        ),
        (vec!["--real".into(), p(&input)], "no synthetic rows"),
    ];
    for (extra, needle) in cases {
        let mut args = vec![
            "report".to_string(),
            "--input".into(),
            p(&input),
            "--label".into(),
            "kind".into(),
            "--json".into(),
            p(&json),
        ];
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_failed_cleanly(&smrt(&args), &json, needle);
    }
    let prov = d.join("prov.csv");
    std::fs::write(&prov, "output_row,source_row\n99,1\n").unwrap();
    let out = smrt(&[
        "report",
        "--input",
        &p(&input),
        "--label",
        "kind",
        "--provenance",
        &p(&prov),
        "--json",
        &p(&json),
    ]);
    assert_failed_cleanly(&out, &json, "output_row \"99\" is not a row of the input");
}

#[test]
fn headless_runs_print_only_smrts_lines() {
    let d = dir("headless");
    let (input, out) = (d.join("in.csv"), d.join("out.csv"));
    write_input(&input);
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smrt"));
        cmd.args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .env_remove("SMRT_BACKEND");
        cmd.output().expect("run smrt")
    };
    let balance = [
        "balance",
        "--input",
        &p(&input),
        "--output",
        &p(&out),
        "--label",
        "kind",
        "--method",
        "smote",
    ];
    // With --quiet, nothing at all on stderr (the notice of `auto` included).
    let quiet = run(&[&balance[..], &["--quiet"]].concat());
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    for args in [&balance[..], &["info"]] {
        let r = run(args);
        assert!(r.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !err.contains("XDG_RUNTIME_DIR") && !err.contains("error"),
            "{args:?}: {err}"
        );
        // At most one notice, and it names its way out.
        let notices: Vec<&str> = err.lines().filter(|l| l.starts_with("smrt: ")).collect();
        assert!(notices.len() <= 1, "{err}");
        if let Some(n) = notices.first() {
            assert!(n.contains("--quiet silences this"), "{n}");
        }
    }
}

/// Starts smrt with `args`, sends `signal` (a `kill` name) after `after`, and returns its output
/// and the seconds from the signal to its exit.
fn interrupted(args: &[&str], signal: &str, after: std::time::Duration) -> (Output, f64) {
    let child = Command::new(env!("CARGO_BIN_EXE_smrt"))
        .args(args)
        .env("SMRT_BACKEND", "cpu")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start smrt");
    std::thread::sleep(after);
    let sent = std::time::Instant::now();
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -{signal}");
    let out = child.wait_with_output().expect("wait for smrt");
    (out, sent.elapsed().as_secs_f64())
}

#[test]
fn sigint_and_sigterm_stop_a_run_cleanly() {
    let d = dir("signals");
    let input = d.join("in.csv");
    write_input(&input);
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let (out, models) = (d.join("out.csv"), d.join("models"));
    let long = [
        "--epochs",
        "1000000",
        "--min-steps",
        "0",
        "--max-steps",
        "100000000",
    ];
    // SIGINT during training: exit 130 within a second, one line, no output, no temporary file.
    let (input_s, out_s) = (p(&input), p(&out));
    let balance = [
        &[
            "balance", "--input", &input_s, "--output", &out_s, "--label", "kind",
        ][..],
        &long,
    ]
    .concat();
    let (run, secs) = interrupted(&balance, "INT", std::time::Duration::from_millis(700));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(130), "{err}");
    assert!(secs < 1.5, "stopped {secs:.2} s after the signal");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: stopped by SIGINT"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("in.csv")],
        "only the input remains"
    );

    // SIGINT during `fit`: no model folder written.
    let interrupted_models = d.join("never");
    let fit_long = [
        &["fit", "--input", &input_s, "--label", "kind", "--out"][..],
        &[interrupted_models.to_str().unwrap()],
        &long,
    ]
    .concat();
    let (run, secs) = interrupted(&fit_long, "INT", std::time::Duration::from_millis(700));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(130), "{err}");
    assert!(secs < 1.5, "stopped {secs:.2} s after the signal");
    assert!(
        !interrupted_models.exists(),
        "no model folder from an interrupted fit"
    );

    // SIGTERM while generating many rows: exit 143, no partial output file.
    let fit = smrt(&[
        "fit",
        "--input",
        &p(&input),
        "--label",
        "kind",
        "--out",
        &p(&models),
        "--epochs",
        "5",
        "--min-steps",
        "0",
        "--quiet",
    ]);
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    let generated = d.join("many.csv");
    let generate = [
        "generate",
        "--models",
        &p(&models),
        "--class",
        "rare",
        "--n",
        "200000000",
        "--output",
        &p(&generated),
        "--generation",
        "prior",
        "--backend",
        "cpu",
    ];
    let (run, secs) = interrupted(&generate, "TERM", std::time::Duration::from_millis(700));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(143), "{err}");
    assert!(secs < 1.5, "stopped {secs:.2} s after the signal");
    assert!(err.starts_with("error: stopped by SIGTERM"), "{err}");
    let mut left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("in.csv"), "models".into()]
    );
}

#[test]
fn unwritable_and_full_outputs_fail_cleanly() {
    let d = dir("unwritable");
    let input = d.join("in.csv");
    let text = write_input(&input);
    let p = |p: &Path| p.to_str().unwrap().to_string();
    // An output "inside" a file.
    let under_file = input.join("out.csv");
    let r = smrt(&[
        "balance",
        "--input",
        &p(&input),
        "--output",
        &p(&under_file),
        "--label",
        "kind",
    ]);
    assert_failed_cleanly(&r, &under_file, "not a directory");
    assert_eq!(
        std::fs::read_to_string(&input).unwrap(),
        text,
        "input untouched"
    );

    // A disk that fills: a 16 KB tmpfs, when this process may mount one.
    let small = d.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs", &p(&small)])
        .output();
    match mounted {
        Ok(m) if m.status.success() => {
            let big = d.join("big.csv");
            let mut s = String::from("a,b,label\n");
            for i in 0..4000 {
                s.push_str(&format!("{},{},{}\n", i % 97, i % 13, if i < 3800 { "x" } else { "y" }));
            }
            std::fs::write(&big, s).unwrap();
            let out = small.join("out.csv");
            let r = smrt(&["balance", "--input", &p(&big), "--output", &p(&out), "--method", "random-over"]);
            let listed: Vec<_> = std::fs::read_dir(&small).unwrap().collect();
            let _ = Command::new("umount").arg(&small).status();
            assert_failed_cleanly(&r, &out, "No space left on device");
            assert!(listed.is_empty(), "no temporary file left on the full disk");
        }
        Ok(m) => eprintln!(
            "full-disk check skipped: cannot mount a tmpfs here ({}); RELIABILITY.md gives the manual check",
            String::from_utf8_lossy(&m.stderr).trim()
        ),
        Err(e) => eprintln!("full-disk check skipped: no mount command ({e})"),
    }
}

#[test]
fn generate_shards_concatenate_to_the_one_shot_file() {
    let d = dir("shards");
    let input = d.join("in.csv");
    write_input(&input);
    let (i, models) = (input.to_str().unwrap(), d.join("models"));
    let m = models.to_str().unwrap();
    let fit = [
        "fit", "--input", i, "--label", "kind", "--out", m, "--epochs", "20",
    ];
    let out = smrt(&fit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = |generation: &str, n: &str, backend: &str, shard: Option<String>, to: &Path| {
        let mut args = vec![
            "generate",
            "--models",
            m,
            "--class",
            "rare",
            "--n",
            n,
            "--seed",
            "3",
            "--input",
            i,
            "--label",
            "kind",
            "--generation",
            generation,
            "--backend",
            backend,
            "--quiet",
            "--output",
            to.to_str().unwrap(),
        ];
        if let Some(s) = &shard {
            args.extend(["--shard", s.as_str()]);
        }
        let out = smrt(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(to).unwrap()
    };
    // Every mode on both engines (the GPU wherever wgpu finds an adapter); shard boundaries
    // inside the 65,536-row write pieces too.
    let modes = [
        "prior",
        "posterior",
        "residual",
        "prior-residual",
        "interpolate",
        "auto",
    ];
    let mut cases: Vec<_> = modes.map(|m| (m, "100", "cpu")).to_vec();
    cases.push(("prior", "70001", "cpu"));
    match smrt::engine::Gpu::new() {
        Ok(_) => cases.extend(modes.map(|m| (m, "100", "gpu"))),
        Err(e) => {
            assert!(
                std::env::var_os("SMRT_TEST_REQUIRE_GPU").is_none(),
                "SMRT_TEST_REQUIRE_GPU is set but: {e}"
            );
            eprintln!("GPU shards skipped: {e}");
        }
    }
    for (generation, n, backend) in cases {
        let whole = run(generation, n, backend, None, &d.join("whole.csv"));
        assert!(whole.starts_with(b"width,height,kind\n"));
        for count in [1, 3, 7] {
            let mut joined = Vec::new();
            for k in 1..=count {
                let part = d.join(format!("part{k}.csv"));
                joined.extend(run(
                    generation,
                    n,
                    backend,
                    Some(format!("{k}/{count}")),
                    &part,
                ));
            }
            assert!(
                joined == whole,
                "{generation} n {n} on {backend}: {count} shards differ from one run"
            );
        }
    }
    // A shard that is not K/S with 1 <= K <= S: one clear line, no file.
    let bad = d.join("bad.csv");
    let out = smrt(&[
        "generate",
        "--models",
        m,
        "--class",
        "rare",
        "--n",
        "10",
        "--shard",
        "4/3",
        "--output",
        bad.to_str().unwrap(),
    ]);
    assert_failed_cleanly(&out, &bad, "4/3");
}

#[test]
fn balance_synthetic_only_and_its_shards_add_up_to_the_balanced_file() {
    let d = dir("synthetic-only");
    let input = d.join("in.csv");
    let text = write_input(&input); // 40 common, 8 rare
    let i = input.to_str().unwrap();
    let run = |method: &str, extra: &[&str], to: &Path, prov: &Path| {
        let mut args = vec![
            "balance",
            "--input",
            i,
            "--label",
            "kind",
            "--method",
            method,
            "--quiet",
            "--output",
            to.to_str().unwrap(),
            "--provenance",
            prov.to_str().unwrap(),
        ];
        if method == "smrt" {
            args.extend(["--epochs", "10"]);
        }
        args.extend(extra);
        let out = smrt(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            std::fs::read_to_string(to).unwrap(),
            std::fs::read_to_string(prov).unwrap(),
        )
    };
    for method in ["smrt", "smote", "random-over"] {
        let (full, full_prov) = run(method, &[], &d.join("full.csv"), &d.join("full-prov.csv"));
        let (synthetic, prov) = run(
            method,
            &["--synthetic-only"],
            &d.join("synthetic.csv"),
            &d.join("prov.csv"),
        );
        // The balanced file is the input, then the synthetic-only file's rows.
        let header = text.lines().next().unwrap();
        let rows = synthetic
            .strip_prefix(&format!("{header}\n"))
            .expect("a header");
        assert_eq!(full, format!("{text}{rows}"), "{method}");
        assert_eq!(rows.lines().count(), 32);
        // Provenance numbers the synthetic-only file's rows from 0; the sources are the same.
        let sources = |p: &str| -> Vec<String> {
            p.lines()
                .skip(1)
                .map(|l| l.split(',').nth(1).unwrap().to_string())
                .collect()
        };
        assert_eq!(sources(&prov), sources(&full_prov), "{method}");
        for count in [1, 3, 7] {
            let (mut joined, mut joined_prov) = (String::new(), String::new());
            for k in 1..=count {
                let shard = format!("{k}/{count}");
                let extra = ["--synthetic-only", "--shard", shard.as_str()];
                let (part, part_prov) = run(
                    method,
                    &extra,
                    &d.join("part.csv"),
                    &d.join("part-prov.csv"),
                );
                joined.push_str(&part);
                joined_prov.push_str(&part_prov);
            }
            assert_eq!(joined, synthetic, "{method}: {count} shards");
            assert_eq!(joined_prov, prov, "{method}: {count} shards of provenance");
        }
    }
    // A shard needs --synthetic-only; under-sampling has no synthetic rows.
    let bad = d.join("bad.csv");
    let (b, p) = (bad.to_str().unwrap(), d.join("p.csv"));
    let out = smrt(&["balance", "--input", i, "--output", b, "--shard", "1/2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--synthetic-only"));
    assert!(!bad.exists());
    let out = smrt(&[
        "balance",
        "--input",
        i,
        "--label",
        "kind",
        "--output",
        b,
        "--method",
        "random-under",
        "--synthetic-only",
    ]);
    assert_failed_cleanly(&out, &bad, "no synthetic rows");
    assert!(!p.exists());
    let npy = d.join("bad.npy");
    let out = smrt(&[
        "balance",
        "--input",
        i,
        "--label",
        "kind",
        "--output",
        npy.to_str().unwrap(),
        "--synthetic-only",
        "--shard",
        "1/2",
    ]);
    assert_failed_cleanly(&out, &npy, ".npy");
}

#[test]
fn under_sampling_by_row_key_decides_the_same_in_pieces() {
    let d = dir("row-key");
    let mut rows = Vec::new();
    for i in 0..440 {
        let label = if i % 11 == 0 { "rare" } else { "common" };
        rows.push(format!("id-{i},{}.5,{label}", i % 13));
    }
    let header = "id,v,label\n";
    let whole = d.join("whole.csv");
    std::fs::write(&whole, format!("{header}{}\n", rows.join("\n"))).unwrap();
    let run = |input: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "balance",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--method",
            "random-under",
            "--row-key",
            "id",
            "--seed",
            "5",
            "--quiet",
        ];
        args.extend(extra);
        let o = smrt(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let one = run(&whole, &d.join("one.csv"), &[]);
    // All 40 rare rows; the 400 common rows kept at rate 0.1 (sd 6).
    let kept: Vec<&str> = one.lines().skip(1).collect();
    let common = kept.iter().filter(|l| l.ends_with(",common")).count();
    assert_eq!(kept.len() - common, 40);
    assert!((40 - 24..=40 + 24).contains(&common), "{common}");
    // Three pieces, each told the whole table's counts: the same rows, in the same order.
    let mut joined = String::from(header);
    for (k, piece) in [&rows[..100], &rows[100..333], &rows[333..]]
        .iter()
        .enumerate()
    {
        let input = d.join(format!("piece{k}.csv"));
        std::fs::write(&input, format!("{header}{}\n", piece.join("\n"))).unwrap();
        let out = run(
            &input,
            &d.join(format!("out{k}.csv")),
            &["--class-counts", "common=400,rare=40"],
        );
        joined.push_str(out.strip_prefix(header).unwrap());
    }
    assert_eq!(joined, one);
    // Errors: the key with another method, a missing column, a class without a count.
    let bad = d.join("bad.csv");
    let (w, b) = (whole.to_str().unwrap(), bad.to_str().unwrap());
    let out = smrt(&[
        "balance",
        "--input",
        w,
        "--output",
        b,
        "--method",
        "smote",
        "--row-key",
        "id",
    ]);
    assert_failed_cleanly(&out, &bad, "random-under");
    let args = [
        "balance",
        "--input",
        w,
        "--output",
        b,
        "--method",
        "random-under",
    ];
    let out = smrt(&[&args[..], &["--row-key", "nope"]].concat());
    assert_failed_cleanly(&out, &bad, "no column \"nope\"");
    let out = smrt(
        &[
            &args[..],
            &["--row-key", "id", "--class-counts", "common=400"],
        ]
        .concat(),
    );
    assert_failed_cleanly(&out, &bad, "no count for class \"rare\"");
}

#[test]
fn fit_from_a_sample_of_each_class() {
    let d = dir("fit-sample");
    let input = d.join("in.csv");
    write_input(&input); // 40 common, 8 rare
    let i = input.to_str().unwrap();
    let fit = |out: &str, extra: &[&str]| {
        let dir = d.join(out);
        let mut args = vec![
            "fit",
            "--input",
            i,
            "--label",
            "kind",
            "--out",
            dir.to_str().unwrap(),
            "--epochs",
            "5",
            "--class",
            "common",
            "--class",
            "rare",
            "--quiet",
        ];
        args.extend(extra);
        let o = smrt(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let index = std::fs::read_to_string(dir.join("smrt-models.json")).unwrap();
        let file = |class: &str| {
            // The index names each class's files; read the weights of `class`.
            let at = index.find(&format!("\"{class}\"")).unwrap();
            let name = index[at..].split("class-").nth(1).unwrap();
            let n: String = name.chars().take_while(char::is_ascii_digit).collect();
            std::fs::read(dir.join(format!("class-{n}.safetensors"))).unwrap()
        };
        (file("common"), file("rare"))
    };
    let (common, rare) = fit("all", &[]);
    // A sample no smaller than a class is all of its rows: the same model.
    let (common_40, rare_40) = fit("forty", &["--sample", "40"]);
    assert!(common_40 == common && rare_40 == rare);
    // Ten rows of the 40 common ones: another model; the 8 rare rows are all used still.
    let (common_10, rare_10) = fit("ten", &["--sample", "10"]);
    assert!(
        common_10 != common,
        "a sample of 10 rows fitted the same model as 40"
    );
    assert!(rare_10 == rare);
    // The default strategy grows the rare class by the file's counts, not the sample's.
    let out = d.join("grown");
    let o = smrt(&[
        "fit",
        "--input",
        i,
        "--label",
        "kind",
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "5",
        "--sample",
        "5",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let index = std::fs::read_to_string(out.join("smrt-models.json")).unwrap();
    assert!(
        index.contains("\"rare\"") && !index.contains("\"common\""),
        "{index}"
    );
    let bad = d.join("bad");
    let o = smrt(&[
        "fit",
        "--input",
        i,
        "--out",
        bad.to_str().unwrap(),
        "--sample",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 2 rows"));
}

#[test]
fn the_summary_counts_the_yes_no_columns_and_their_rows_keep_their_two_values() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.csv");
    let mut text = String::from("size,member,label\n");
    for i in 0..40 {
        let label = if i < 30 { "big" } else { "small" };
        text += &format!("{},{},{label}\n", i as f32 * 0.1, [2, 7][i % 2]);
    }
    std::fs::write(&input, &text).unwrap();
    let output = d.path().join("out.csv");
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let out = smrt(&[
        "balance",
        "--input",
        i,
        "--output",
        o,
        "--epochs",
        "5",
        "--min-steps",
        "0",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 2 feature columns yes/no"), "{err}");
    let written = std::fs::read_to_string(&output).unwrap();
    let synthetic: Vec<&str> = written[text.len()..].lines().collect();
    assert_eq!(synthetic.len(), 20);
    for line in synthetic {
        let member: f32 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!(member == 2.0 || member == 7.0, "{line}");
    }
}
