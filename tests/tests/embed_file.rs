//! `pith embed --file` embeds batches of consecutive lines with one GEMM per layer: every row is
//! the vector `pith embed` gives its line alone, whatever the thread count.

use std::process::Command;

use pith_tests::cli::pith_bin;
use pith_tools::defaults::repo_root;

fn rows(path: &std::path::Path, dim: usize) -> Vec<Vec<f32>> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(b.len() % (4 * dim), 0, "{} bytes", b.len());
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect::<Vec<_>>()
        .chunks_exact(dim)
        .map(<[f32]>::to_vec)
        .collect()
}

#[test]
fn embed_file_rows_equal_each_lines_own_embedding() {
    let root = repo_root().unwrap();
    let snli = std::fs::read_to_string(root.join("data/calib/snli-dev-sentences.txt")).unwrap();
    // 150 lines (about 2,000 tokens: several batches), a long one among them.
    let mut lines: Vec<String> = snli
        .lines()
        .skip(1000)
        .take(149)
        .map(String::from)
        .collect();
    lines.insert(70, "a very long line of words ".repeat(60));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("rows-{threads}.f32"));
        let r = Command::new(pith_bin())
            .args(["embed", "--file"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args(["--threads", threads])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        outs.push(rows(&out, 384));
    }
    assert_eq!(outs[0].len(), lines.len());
    assert_eq!(outs[0], outs[1], "the thread count changed a row");
    for i in [0, 1, 69, 70, 71, 148, 149] {
        let r = Command::new(pith_bin())
            .args(["embed", "--json", &lines[i]])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        let alone: Vec<f32> = v["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(outs[0][i], alone, "line {i}");
    }
}
