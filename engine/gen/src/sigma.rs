//! A generated Sigma rule set with SigmaHQ's mix of modifiers, for benches
//! and tests on machines without SigmaHQ's rules.

use std::fmt::Write as _;

use crate::Rng;

/// A generated rule set with SigmaHQ's mix of modifiers and logsources
/// (contains / endswith / startswith lists, exact values, `all`, regexes,
/// wildcards, keywords rarely, filters with `not`), for machines without
/// the shared rules.
pub fn generated_rules(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let cats: &[(&str, &[&str])] = &[
        (
            "process_creation",
            &[
                "CommandLine",
                "Image",
                "ParentImage",
                "OriginalFileName",
                "ParentCommandLine",
                "User",
                "IntegrityLevel",
            ],
        ),
        (
            "image_load",
            &["ImageLoaded", "Image", "Signed", "Signature"],
        ),
        (
            "network_connection",
            &[
                "DestinationHostname",
                "DestinationPort",
                "Image",
                "DestinationIp",
            ],
        ),
        ("file_event", &["TargetFilename", "Image"]),
        ("registry_set", &["TargetObject", "Details", "Image"]),
        ("dns_query", &["QueryName", "Image"]),
        ("ps_script", &["ScriptBlockText"]),
    ];
    let weights = [55, 8, 6, 10, 12, 3, 6];
    let words = [
        "mimikatz",
        "sekurlsa",
        "invoke-",
        "downloadstring",
        "frombase64string",
        "-enc",
        "bypass",
        "hidden",
        "rundll32",
        "regsvr32",
        "certutil",
        "bitsadmin",
        "\\temp\\",
        "\\appdata\\",
        "vssadmin",
        "shadowcopy",
        "wmic",
        "procdump",
        "lsass",
        "comsvcs",
        "\\\\pipe\\\\",
        "schtasks",
        "/create",
        "reg add",
        "currentversion\\run",
        "powershell",
        "mshta",
        "javascript:",
        "vbscript",
        "\\users\\public\\",
        ".hta",
        ".vbs",
        ".js",
        ".ps1",
        ".bat",
        "nltest",
        "/domain_trusts",
        "whoami",
        "net user",
        "net group",
        "curl",
        "wget",
        "iex",
        "::",
        "ntds.dit",
        "sam",
        "system32\\config",
        "tor",
        "ngrok",
        "anydesk",
    ];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut r = rng.below(100);
        let mut ci = 0;
        while r >= weights[ci] {
            r -= weights[ci];
            ci += 1;
        }
        let (cat, fields) = cats[ci];
        let mut det = String::new();
        let nsel = 1 + rng.below(2);
        for s in 0..nsel {
            let _ = writeln!(det, "    selection_{s}:");
            let nfield = 1 + rng.below(2);
            let mut used = Vec::new();
            for _ in 0..nfield {
                let field = fields[rng.below(fields.len())];
                let m = rng.below(100);
                let (mods, count) = match m {
                    0..=39 => ("|contains", 1 + rng.below(5)),
                    40..=64 => ("|endswith", 1 + rng.below(4)),
                    65..=74 => ("|startswith", 1 + rng.below(3)),
                    75..=84 => ("", 1 + rng.below(3)),
                    85..=92 => ("|contains|all", 2),
                    93..=96 => ("|re", 1),
                    _ => ("|contains|windash", 1),
                };
                // A YAML map cannot repeat a key.
                if used.contains(&(field, mods)) {
                    continue;
                }
                used.push((field, mods));
                let _ = writeln!(det, "        {field}{mods}:");
                for _ in 0..count {
                    let w = words[rng.below(words.len())];
                    let v = if mods == "|re" {
                        format!("{}[0-9a-z]{{2,8}}\\.(exe|dll)", regex_escape(w))
                    } else {
                        format!("{w}{}", rng.hex(4).to_lowercase())
                    };
                    let _ = writeln!(det, "            - '{}'", v.replace('\'', "''"));
                }
            }
        }
        let with_filter = rng.below(3) == 0;
        if with_filter {
            let _ = writeln!(
                det,
                "    filter_main:\n        Image|startswith: 'C:\\Program Files\\{}'",
                rng.hex(6)
            );
        }
        let cond = match (nsel, with_filter) {
            (1, false) => "selection_0".to_string(),
            (1, true) => "selection_0 and not filter_main".to_string(),
            (_, false) => "all of selection_*".to_string(),
            (_, true) => "all of selection_* and not 1 of filter_*".to_string(),
        };
        out.push(format!(
            "title: Generated rule {i}\nid: {:08x}-0000-4000-8000-{:012x}\nstatus: test\nlevel: {}\ntags:\n    - attack.t{}\nlogsource:\n    product: windows\n    category: {cat}\ndetection:\n{det}    condition: {cond}\n",
            i,
            rng.next_u64() & 0xffff_ffff_ffff,
            ["low", "medium", "high", "critical"][rng.below(4)],
            1000 + rng.below(600),
        ));
    }
    out
}

fn regex_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}
