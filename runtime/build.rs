//! Tells the property tests which of the host's x86 kernels this CPU runs: a suite whose
//! instructions the CPU lacks is then reported `ignored, not run: CPU lacks ...` by the test
//! harness, instead of passing without checking anything. (Tests run where they are built; a
//! suite built on a CPU that has the instructions and run on one that lacks them fails.)

/// `(cfg, x86 features)`: each cfg is set when the build machine has all its features.
const SUITES: [(&str, &[&str]); 3] = [
    ("pith_cpu_avx2", &["avx2"]),
    (
        "pith_cpu_avx512_vnni",
        &["avx512f", "avx512bw", "avx512vl", "avx512vnni"],
    ),
    (
        "pith_cpu_avx512_ln",
        &["avx512f", "avx512dq", "avx512bw", "avx512vl"],
    ),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for (cfg, _) in SUITES {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    // Only a native x86-64 build runs its tests on the machine that builds it.
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    #[cfg(target_arch = "x86_64")]
    if native {
        for (cfg, features) in SUITES {
            if features.iter().all(|f| has(f)) {
                println!("cargo::rustc-cfg={cfg}");
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = native;
}

#[cfg(target_arch = "x86_64")]
fn has(feature: &str) -> bool {
    match feature {
        "avx2" => std::is_x86_feature_detected!("avx2"),
        "avx512f" => std::is_x86_feature_detected!("avx512f"),
        "avx512bw" => std::is_x86_feature_detected!("avx512bw"),
        "avx512vl" => std::is_x86_feature_detected!("avx512vl"),
        "avx512dq" => std::is_x86_feature_detected!("avx512dq"),
        "avx512vnni" => std::is_x86_feature_detected!("avx512vnni"),
        _ => false,
    }
}
