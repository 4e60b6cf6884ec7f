//! Benchmark workloads: a realistic, mostly benign Windows event mix in the
//! evtx_dump JSON layout, and a generated rule set for machines without
//! SigmaHQ's rules.
//!
//! Everything is deterministic from a seed so runs are comparable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sonic_rs::JsonValueTrait;

/// A small, fast, deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn guid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let _ = write!(s, "{:016X}", self.next_u64());
        }
        s.truncate(n);
        s
    }
}

const PROCS: &[(&str, &str)] = &[
    (
        r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule",
    ),
    (
        r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k LocalServiceNetworkRestricted -p",
    ),
    (
        r"C:\Program Files\Google\Chrome\Application\chrome.exe",
        r#""C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --field-trial-handle=1234 --lang=en-US --device-scale-factor=1 --num-raster-threads=4 --enable-main-frame-before-activation --renderer-client-id=7 --mojo-platform-channel-handle=4120 /prefetch:1"#,
    ),
    (
        r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
        r#""C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE" /recycle"#,
    ),
    (
        r"C:\Windows\System32\conhost.exe",
        r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1",
    ),
    (
        r"C:\Windows\System32\backgroundTaskHost.exe",
        r#""C:\Windows\system32\backgroundTaskHost.exe" -ServerName:BackgroundTaskHost.WebAccountProvider"#,
    ),
    (
        r"C:\Windows\System32\taskhostw.exe",
        r"taskhostw.exe {222A245B-E637-4AE9-A93F-A59CA119A75E}",
    ),
    (
        r"C:\Windows\System32\RuntimeBroker.exe",
        r"C:\Windows\System32\RuntimeBroker.exe -Embedding",
    ),
    (
        r"C:\Program Files\Microsoft VS Code\Code.exe",
        r#""C:\Program Files\Microsoft VS Code\Code.exe" --type=utility --utility-sub-type=node.mojom.NodeService --lang=en-US --service-sandbox-type=none"#,
    ),
    (
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        r#""C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -NoProfile -ExecutionPolicy Bypass -File C:\ProgramData\Company\inventory.ps1"#,
    ),
    (
        r"C:\Windows\System32\cmd.exe",
        r#"C:\Windows\system32\cmd.exe /c "echo %DATE% > C:\Temp\stamp.txt""#,
    ),
    (
        r"C:\Windows\System32\msiexec.exe",
        r"C:\Windows\system32\msiexec.exe /V",
    ),
    (
        r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
        r#""C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" --type=gpu-process --gpu-preferences=UAAAAAAAAADgAAAYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= --mojo-platform-channel-handle=2012"#,
    ),
    (
        r"C:\Windows\System32\wbem\WmiPrvSE.exe",
        r"C:\Windows\system32\wbem\wmiprvse.exe -secured -Embedding",
    ),
    (
        r"C:\Windows\System32\SearchProtocolHost.exe",
        r#""C:\Windows\system32\SearchProtocolHost.exe" Global\UsGthrFltPipeMssGthrPipe5_ Global\UsGthrCtrlFltPipeMssGthrPipe5 1 -2147483646 "Software\Microsoft\Windows Search""#,
    ),
    (
        r"C:\Users\jdoe\AppData\Local\Microsoft\Teams\current\Teams.exe",
        r#""C:\Users\jdoe\AppData\Local\Microsoft\Teams\current\Teams.exe" --type=renderer --autoplay-policy=no-user-gesture-required"#,
    ),
    (
        r"C:\Windows\System32\git.exe",
        r"git.exe fetch --all --prune",
    ),
    (
        r"C:\Windows\System32\net.exe",
        r"net use Z: \\fileserver\share /persistent:yes",
    ),
];
const PARENTS: &[&str] = &[
    r"C:\Windows\explorer.exe",
    r"C:\Windows\System32\services.exe",
    r"C:\Windows\System32\svchost.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Windows\System32\wininit.exe",
];
const USERS: &[&str] = &[
    r"CORP\jdoe",
    r"CORP\asmith",
    r"NT AUTHORITY\SYSTEM",
    r"CORP\svc_backup",
    r"NT AUTHORITY\LOCAL SERVICE",
];
const HOSTS: &[&str] = &[
    "WS-0142.corp.example",
    "WS-0388.corp.example",
    "SRV-FILE01.corp.example",
    "DC01.corp.example",
];
const DLLS: &[&str] = &[
    r"C:\Windows\System32\kernel32.dll",
    r"C:\Windows\System32\ntdll.dll",
    r"C:\Windows\System32\combase.dll",
    r"C:\Windows\System32\crypt32.dll",
    r"C:\Windows\System32\wininet.dll",
    r"C:\Program Files\Google\Chrome\Application\120.0.6099.130\chrome_elf.dll",
];
const DOMAINS: &[&str] = &[
    "www.google.com",
    "outlook.office365.com",
    "update.googleapis.com",
    "teams.microsoft.com",
    "github.com",
    "fileserver.corp.example",
    "login.microsoftonline.com",
];
const FILES: &[&str] = &[
    r"C:\Users\jdoe\AppData\Local\Temp\chrome_drag1234_567\report.pdf",
    r"C:\Users\asmith\Documents\Q3 Budget.xlsx",
    r"C:\Windows\Prefetch\SVCHOST.EXE-3530F672.pf",
    r"C:\ProgramData\Microsoft\Windows Defender\Scans\History\Service\DetectionHistory\00\tmp.bin",
    r"C:\Users\jdoe\AppData\Roaming\Microsoft\Windows\Recent\notes.lnk",
];
const REGKEYS: &[&str] = &[
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WINEVT\Channels\Microsoft-Windows-Dhcp-Client/Operational\Enabled",
    r"HKU\S-1-5-21-1111-2222-3333-1001\Software\Microsoft\Office\16.0\Common\Roaming\Identities\LastSync",
    r"HKLM\SYSTEM\CurrentControlSet\Services\bam\State\UserSettings\S-1-5-21-1111-2222-3333-1001\Device\HarddiskVolume3\Windows\System32\notepad.exe",
];
const SCRIPTS: &[&str] = &[
    "Get-ChildItem -Path C:\\ProgramData\\Company -Filter *.log | Where-Object { $_.LastWriteTime -lt (Get-Date).AddDays(-30) } | Remove-Item",
    "$inv = Get-CimInstance -ClassName Win32_OperatingSystem; $inv | Select-Object Caption, Version | ConvertTo-Json | Out-File C:\\ProgramData\\Company\\os.json",
    "Import-Module ActiveDirectory; Get-ADUser -Filter * -SearchBase 'OU=Staff,DC=corp,DC=example' | Measure-Object",
];

/// Real command lines carry per-run details (client ids, handles, temp
/// names, GUIDs); vary the numbers and append per-run arguments to some so
/// repeated values are as common as in real logs, not more.
fn vary_command_line(cmd: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(cmd.len() + 48);
    let mut digits = false;
    for c in cmd.chars() {
        if c.is_ascii_digit() {
            if !digits {
                let _ = write!(out, "{}", rng.below(10_000));
                digits = true;
            }
        } else {
            digits = false;
            out.push(c);
        }
    }
    match rng.below(4) {
        0 => {
            let _ = write!(out, " /session:{{{}}}", rng.guid());
        }
        1 => {
            let _ = write!(
                out,
                r" C:\Users\jdoe\AppData\Local\Temp\tmp{}.tmp",
                rng.hex(6)
            );
        }
        _ => {}
    }
    out
}

fn system(ev: &mut String, rng: &mut Rng, provider: &str, eid: u32, channel: &str) {
    let host = rng.pick(HOSTS);
    let _ = write!(
        ev,
        r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"{provider}","Guid":"{{{}}}"}}}},"EventID":{eid},"Version":5,"Level":4,"Task":{eid},"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{{"#attributes":{{"SystemTime":"2026-11-0{}T{:02}:{:02}:{:02}.{:06}Z"}}}},"EventRecordID":{},"Execution":{{"#attributes":{{"ProcessID":{},"ThreadID":{}}}}},"Channel":"{channel}","Computer":"{host}","Security":{{"#attributes":{{"UserID":"S-1-5-18"}}}}}},"EventData":{{"##,
        rng.guid(),
        1 + rng.below(9),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1_000_000),
        rng.next_u64() % 10_000_000,
        rng.below(10000),
        rng.below(10000),
    );
}

fn kv(ev: &mut String, k: &str, v: &str, first: bool) {
    if !first {
        ev.push(',');
    }
    ev.push('"');
    ev.push_str(k);
    ev.push_str("\":");
    // JSON string escape for the characters our values use.
    ev.push('"');
    for c in v.chars() {
        match c {
            '"' => ev.push_str("\\\""),
            '\\' => ev.push_str("\\\\"),
            c => ev.push(c),
        }
    }
    ev.push('"');
}

/// One synthetic event; the mix follows a typical Sysmon + Security workstation log.
pub fn windows_event(rng: &mut Rng) -> String {
    let mut ev = String::with_capacity(1500);
    let sysmon = "Microsoft-Windows-Sysmon/Operational";
    let roll = rng.below(100);
    let (image, cmd) = PROCS[rng.below(PROCS.len())];
    let utc = format!(
        "2026-11-0{} {:02}:{:02}:{:02}.{:03}",
        1 + rng.below(9),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    );
    let pguid = format!("{{{}}}", rng.guid());
    match roll {
        0..=29 => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 1, sysmon);
            // Services run under services.exe / svchost.exe, user programs under explorer.exe.
            let pimage = if image.contains("svchost")
                || image.contains("WmiPrvSE")
                || image.contains("SearchProtocol")
            {
                if image.contains("svchost") {
                    PARENTS[1]
                } else {
                    PARENTS[2]
                }
            } else if image.contains("renderer") || cmd.contains("--type=") {
                PARENTS[3]
            } else {
                PARENTS[0]
            };
            let pcmd = pimage;
            let hashes = format!(
                "SHA1={},MD5={},SHA256={},IMPHASH={}",
                rng.hex(40),
                rng.hex(32),
                rng.hex(64),
                rng.hex(32)
            );
            let file = image.rsplit('\\').next().unwrap_or(image);
            let fields: Vec<(&str, String)> = vec![
                ("RuleName", "-".into()),
                ("UtcTime", utc),
                ("ProcessGuid", pguid),
                ("ProcessId", rng.below(20000).to_string()),
                ("Image", image.into()),
                ("FileVersion", "10.0.19041.1 (WinBuild.160101.0800)".into()),
                ("Description", "Windows process".into()),
                ("Product", "Microsoft® Windows® Operating System".into()),
                ("Company", "Microsoft Corporation".into()),
                ("OriginalFileName", file.to_string()),
                ("CommandLine", vary_command_line(cmd, rng)),
                ("CurrentDirectory", r"C:\Windows\system32\".into()),
                ("User", rng.pick(USERS).into()),
                ("LogonGuid", format!("{{{}}}", rng.guid())),
                ("LogonId", format!("0x{:x}", rng.next_u64() % 0xffffff)),
                ("TerminalSessionId", rng.below(3).to_string()),
                (
                    "IntegrityLevel",
                    rng.pick(&["Medium", "High", "System"]).into(),
                ),
                ("Hashes", hashes),
                ("ParentProcessGuid", format!("{{{}}}", rng.guid())),
                ("ParentProcessId", rng.below(20000).to_string()),
                ("ParentImage", pimage.into()),
                ("ParentCommandLine", pcmd.into()),
                ("ParentUser", rng.pick(USERS).into()),
            ];
            for (i, (k, v)) in fields.iter().enumerate() {
                kv(&mut ev, k, v, i == 0);
            }
        }
        30..=44 => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 7, sysmon);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "UtcTime", &utc, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(&mut ev, "ProcessId", &rng.below(20000).to_string(), false);
            kv(&mut ev, "Image", image, false);
            kv(&mut ev, "ImageLoaded", rng.pick(DLLS), false);
            kv(&mut ev, "FileVersion", "10.0.19041.3636", false);
            kv(&mut ev, "Description", "Windows library", false);
            kv(
                &mut ev,
                "Product",
                "Microsoft® Windows® Operating System",
                false,
            );
            kv(&mut ev, "Company", "Microsoft Corporation", false);
            kv(&mut ev, "OriginalFileName", "lib.dll", false);
            kv(&mut ev, "Hashes", &format!("SHA256={}", rng.hex(64)), false);
            kv(&mut ev, "Signed", "true", false);
            kv(&mut ev, "Signature", "Microsoft Windows", false);
            kv(&mut ev, "SignatureStatus", "Valid", false);
            kv(&mut ev, "User", rng.pick(USERS), false);
        }
        45..=56 => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 3, sysmon);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "UtcTime", &utc, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(&mut ev, "ProcessId", &rng.below(20000).to_string(), false);
            kv(&mut ev, "Image", image, false);
            kv(&mut ev, "User", rng.pick(USERS), false);
            kv(&mut ev, "Protocol", "tcp", false);
            kv(&mut ev, "Initiated", "true", false);
            kv(&mut ev, "SourceIsIpv6", "false", false);
            kv(
                &mut ev,
                "SourceIp",
                &format!("10.1.{}.{}", rng.below(255), rng.below(255)),
                false,
            );
            kv(&mut ev, "SourceHostname", rng.pick(HOSTS), false);
            kv(
                &mut ev,
                "SourcePort",
                &(49152 + rng.below(16000)).to_string(),
                false,
            );
            kv(&mut ev, "DestinationIsIpv6", "false", false);
            kv(
                &mut ev,
                "DestinationIp",
                &format!(
                    "{}.{}.{}.{}",
                    13 + rng.below(200),
                    rng.below(255),
                    rng.below(255),
                    rng.below(255)
                ),
                false,
            );
            kv(&mut ev, "DestinationHostname", rng.pick(DOMAINS), false);
            kv(
                &mut ev,
                "DestinationPort",
                rng.pick(&["443", "80", "445", "53"]),
                false,
            );
        }
        57..=66 => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 11, sysmon);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "UtcTime", &utc, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(&mut ev, "ProcessId", &rng.below(20000).to_string(), false);
            kv(&mut ev, "Image", image, false);
            kv(&mut ev, "TargetFilename", rng.pick(FILES), false);
            kv(&mut ev, "CreationUtcTime", &utc, false);
            kv(&mut ev, "User", rng.pick(USERS), false);
        }
        67..=76 => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 13, sysmon);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "EventType", "SetValue", false);
            kv(&mut ev, "UtcTime", &utc, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(&mut ev, "ProcessId", &rng.below(20000).to_string(), false);
            kv(&mut ev, "Image", image, false);
            kv(&mut ev, "TargetObject", rng.pick(REGKEYS), false);
            kv(
                &mut ev,
                "Details",
                rng.pick(&[
                    "DWORD (0x00000001)",
                    "Binary Data",
                    r"C:\Windows\System32\notepad.exe",
                ]),
                false,
            );
            kv(&mut ev, "User", rng.pick(USERS), false);
        }
        77..=83 => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 22, sysmon);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "UtcTime", &utc, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(&mut ev, "ProcessId", &rng.below(20000).to_string(), false);
            kv(&mut ev, "QueryName", rng.pick(DOMAINS), false);
            kv(&mut ev, "QueryStatus", "0", false);
            kv(
                &mut ev,
                "QueryResults",
                "type:  5 edge.example.net;::ffff:23.1.2.3;",
                false,
            );
            kv(&mut ev, "Image", image, false);
            kv(&mut ev, "User", rng.pick(USERS), false);
        }
        84..=92 => {
            system(
                &mut ev,
                rng,
                "Microsoft-Windows-Security-Auditing",
                4624,
                "Security",
            );
            let user = rng.pick(&["jdoe", "asmith", "svc_backup", "WS-0142$"]);
            kv(&mut ev, "SubjectUserSid", "S-1-5-18", true);
            kv(&mut ev, "SubjectUserName", "WS-0142$", false);
            kv(&mut ev, "SubjectDomainName", "CORP", false);
            kv(&mut ev, "SubjectLogonId", "0x3e7", false);
            kv(
                &mut ev,
                "TargetUserSid",
                "S-1-5-21-1111-2222-3333-1001",
                false,
            );
            kv(&mut ev, "TargetUserName", user, false);
            kv(&mut ev, "TargetDomainName", "CORP", false);
            kv(
                &mut ev,
                "TargetLogonId",
                &format!("0x{:x}", rng.next_u64() % 0xffffff),
                false,
            );
            kv(
                &mut ev,
                "LogonType",
                rng.pick(&["2", "3", "5", "7", "10"]),
                false,
            );
            kv(&mut ev, "LogonProcessName", "User32 ", false);
            kv(
                &mut ev,
                "AuthenticationPackageName",
                rng.pick(&["Negotiate", "Kerberos", "NTLM"]),
                false,
            );
            kv(&mut ev, "WorkstationName", "WS-0142", false);
            kv(&mut ev, "LogonGuid", &format!("{{{}}}", rng.guid()), false);
            kv(
                &mut ev,
                "ProcessName",
                r"C:\Windows\System32\svchost.exe",
                false,
            );
            kv(
                &mut ev,
                "IpAddress",
                &format!("10.1.{}.{}", rng.below(255), rng.below(255)),
                false,
            );
            kv(&mut ev, "IpPort", &rng.below(65535).to_string(), false);
        }
        _ => {
            system(
                &mut ev,
                rng,
                "Microsoft-Windows-PowerShell",
                4104,
                "Microsoft-Windows-PowerShell/Operational",
            );
            kv(&mut ev, "MessageNumber", "1", true);
            kv(&mut ev, "MessageTotal", "1", false);
            kv(&mut ev, "ScriptBlockText", rng.pick(SCRIPTS), false);
            kv(&mut ev, "ScriptBlockId", &rng.guid(), false);
            kv(
                &mut ev,
                "Path",
                r"C:\ProgramData\Company\inventory.ps1",
                false,
            );
        }
    }
    ev.push_str("}}}");
    ev
}

/// The baseline every bench compares against: parse each event to a DOM,
/// as detection does first. Returns the number of objects parsed.
pub fn parse_only(events: &[String]) -> usize {
    events
        .iter()
        .filter(|e| {
            warden_detect::event::parse(e.as_bytes())
                .map(|v| v.is_object())
                .unwrap_or(false)
        })
        .count()
}

/// `n` events from `seed`.
pub fn windows_events(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| windows_event(&mut rng)).collect()
}

/// SigmaHQ's rule folders under `../shared/sigma`, if present.
pub fn sigmahq_rule_dirs() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/sigma");
    let root = if root.is_dir() {
        root
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sigma")
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rules"))
        })
        .collect();
    dirs.sort();
    (!dirs.is_empty()).then_some(dirs)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use warden_detect::{Engine, Mapping};

    #[test]
    fn generated_rules_all_load_and_events_parse() {
        let mut b = Engine::builder().mapping(Mapping::builtin("windows").unwrap().unwrap());
        for (i, r) in generated_rules(3200, 7).iter().enumerate() {
            b.add_yaml(r, Path::new(&format!("generated-{i}.yml")))
                .unwrap();
        }
        let e = b.build();
        assert!(e.rejections().is_empty(), "{:?}", &e.rejections()[..1]);
        assert_eq!(e.rules().len(), 3200);
        let events = windows_events(500, 1);
        assert_eq!(parse_only(&events), 500);
        let mut sc = e.scratch();
        let mut hits = Vec::new();
        for ev in &events {
            let v = warden_detect::event::parse(ev.as_bytes()).unwrap();
            e.detect_raw(ev.as_bytes(), &v, &mut sc, &mut hits);
        }
    }
}
