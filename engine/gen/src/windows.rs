//! Windows events in the evtx_dump JSON layout (Sysmon, Security, PowerShell),
//! mostly benign, with the variety of real workstation logs.

use std::fmt::Write as _;

use crate::Rng;

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
/// names, GUIDs); vary those and append per-run arguments to some so
/// repeated values are as common as in real logs, not more. Only numbers
/// of three digits or more vary, and a braced GUID becomes a fresh one:
/// `System32`, `Office16`, `v1.0` or `0xffffffff` are the same on every
/// machine, and the rules test them.
fn vary_command_line(cmd: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(cmd.len() + 48);
    let mut rest = cmd;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit() || c == '{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix('{') {
            // `{` + 36 + `}`: a GUID; any other brace stays as written.
            rest = match r.get(..37) {
                Some(g) if g.ends_with('}') && is_guid(&g[..36]) => {
                    let _ = write!(out, "{{{}}}", rng.guid());
                    &r[37..]
                }
                _ => {
                    out.push('{');
                    r
                }
            };
            continue;
        }
        let n = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if n >= 3 {
            let _ = write!(out, "{}", rng.below(10_000));
        } else {
            out.push_str(&rest[..n]);
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
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

/// `8-4-4-4-12` hexadecimal digits.
fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn system(ev: &mut String, rng: &mut Rng, provider: &str, eid: u32, channel: &str, time: &str) {
    let host = rng.pick(HOSTS);
    let _ = write!(
        ev,
        r##"{{"Event":{{"System":{{"Provider":{{"#attributes":{{"Name":"{provider}","Guid":"{{{}}}"}}}},"EventID":{eid},"Version":5,"Level":4,"Task":{eid},"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{{"#attributes":{{"SystemTime":"{time}"}}}},"EventRecordID":{},"Execution":{{"#attributes":{{"ProcessID":{},"ThreadID":{}}}}},"Channel":"{channel}","Computer":"{host}","Security":{{"#attributes":{{"UserID":"S-1-5-18"}}}}}},"EventData":{{"##,
        rng.guid(),
        rng.next_u64() % 10_000_000,
        rng.below(10000),
        rng.below(10000),
    );
}

pub(crate) fn kv(ev: &mut String, k: &str, v: &str, first: bool) {
    if !first {
        ev.push(',');
    }
    ev.push('"');
    ev.push_str(k);
    ev.push_str("\":\"");
    crate::push_json_str(ev, v);
    ev.push('"');
}

/// One synthetic event at a random time in early November 2026; the mix
/// follows a typical Sysmon + Security workstation log.
pub fn windows_event(rng: &mut Rng) -> String {
    let time = format!(
        "2026-11-0{}T{:02}:{:02}:{:02}.{:06}Z",
        1 + rng.below(9),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1_000_000)
    );
    windows_event_at(rng, &time)
}

/// One synthetic Windows event created at `time` (RFC 3339).
pub fn windows_event_at(rng: &mut Rng, time: &str) -> String {
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
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 1, sysmon, time);
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
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 7, sysmon, time);
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
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 3, sysmon, time);
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
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 11, sysmon, time);
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
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 13, sysmon, time);
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
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 22, sysmon, time);
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
                time,
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
                time,
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

/// `n` events from `seed`.
pub fn windows_events(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| windows_event(&mut rng)).collect()
}

/// A Windows event that a starter-pack rule or a demo indicator must flag.
pub(crate) fn windows_attack(rng: &mut Rng, time: &str, planted: crate::Planted) -> String {
    use crate::Planted as P;
    let mut ev = String::with_capacity(1200);
    let sysmon = "Microsoft-Windows-Sysmon/Operational";
    let user = rng.pick(USERS);
    let pguid = format!("{{{}}}", rng.guid());
    let proc_create = |ev: &mut String, rng: &mut Rng, image: &str, cmd: &str, parent: &str| {
        system(ev, rng, "Microsoft-Windows-Sysmon", 1, sysmon, time);
        kv(ev, "RuleName", "-", true);
        kv(ev, "UtcTime", time, false);
        kv(ev, "ProcessGuid", &pguid, false);
        kv(ev, "ProcessId", &rng.below(20000).to_string(), false);
        kv(ev, "Image", image, false);
        let file = image.rsplit('\\').next().unwrap_or(image);
        kv(ev, "OriginalFileName", file, false);
        kv(ev, "CommandLine", cmd, false);
        kv(ev, "User", user, false);
        kv(ev, "IntegrityLevel", "High", false);
        kv(
            ev,
            "Hashes",
            &format!("SHA256={},MD5={}", rng.hex(64), rng.hex(32)),
            false,
        );
        kv(ev, "ParentImage", parent, false);
        kv(ev, "ParentCommandLine", parent, false);
    };
    match planted {
        P::CredentialDumping => proc_create(
            &mut ev,
            rng,
            r"C:\Users\Public\m64.exe",
            r#"m64.exe "privilege::debug" "sekurlsa::logonpasswords" exit"#,
            r"C:\Windows\System32\cmd.exe",
        ),
        P::EncodedPowershell => proc_create(
            &mut ev,
            rng,
            r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            &format!(
                "powershell.exe -nop -w hidden -enc {}",
                "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA"
            ),
            r"C:\Windows\explorer.exe",
        ),
        P::OfficeChildShell => proc_create(
            &mut ev,
            rng,
            r"C:\Windows\System32\cmd.exe",
            r"cmd.exe /c C:\Users\Public\invoice.bat",
            r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
        ),
        P::RunKey => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 13, sysmon, time);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "EventType", "SetValue", false);
            kv(&mut ev, "UtcTime", time, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(&mut ev, "Image", r"C:\Windows\System32\reg.exe", false);
            kv(
                &mut ev,
                "TargetObject",
                r"HKU\S-1-5-21-1111-2222-3333-1001\Software\Microsoft\Windows\CurrentVersion\Run\Updater",
                false,
            );
            kv(
                &mut ev,
                "Details",
                r"C:\Users\jdoe\AppData\Roaming\updater.exe",
                false,
            );
            kv(&mut ev, "User", user, false);
        }
        P::TunnelDns => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 22, sysmon, time);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "UtcTime", time, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(
                &mut ev,
                "QueryName",
                &format!("{}.ngrok-free.app", rng.hex(8).to_lowercase()),
                false,
            );
            kv(&mut ev, "QueryStatus", "0", false);
            kv(
                &mut ev,
                "Image",
                r"C:\Users\jdoe\AppData\Local\Temp\agent.exe",
                false,
            );
            kv(&mut ev, "User", user, false);
        }
        P::IndicatorIp | P::IndicatorDomain => {
            system(&mut ev, rng, "Microsoft-Windows-Sysmon", 3, sysmon, time);
            kv(&mut ev, "RuleName", "-", true);
            kv(&mut ev, "UtcTime", time, false);
            kv(&mut ev, "ProcessGuid", &pguid, false);
            kv(
                &mut ev,
                "Image",
                r"C:\Users\jdoe\AppData\Local\Temp\agent.exe",
                false,
            );
            kv(&mut ev, "User", user, false);
            kv(&mut ev, "Protocol", "tcp", false);
            kv(&mut ev, "Initiated", "true", false);
            kv(&mut ev, "SourceIp", "10.1.4.20", false);
            kv(&mut ev, "SourcePort", "51544", false);
            let (ip, host) = if planted == P::IndicatorIp {
                (crate::stream::INDICATOR_IP, "unknown")
            } else {
                ("93.184.216.34", crate::stream::INDICATOR_DOMAIN)
            };
            kv(&mut ev, "DestinationIp", ip, false);
            kv(&mut ev, "DestinationHostname", host, false);
            kv(&mut ev, "DestinationPort", "443", false);
        }
        // Linux-only kinds never reach here; make a benign event instead.
        P::ReverseShell | P::CurlPipeShell => return windows_event_at(rng, time),
    }
    ev.push_str("}}}");
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_vary_per_run_details_only() {
        let mut rng = Rng::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let base = vary_command_line(
                r#""C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -p 0xffffffff --handle=4120 {222A245B-E637-4AE9-A93F-A59CA119A75E} {not-a-guid} x{"#,
                &mut rng,
            );
            // What is the same on every machine stays as written.
            assert!(
                base.starts_with(
                    r#""C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -p 0xffffffff --handle="#
                ),
                "{base}"
            );
            assert!(base.contains(" {not-a-guid} x{"), "{base}");
            // The handle is a number again, the GUID a well-formed one.
            let after = &base[base.find("--handle=").unwrap() + 9..];
            let (handle, after) = after.split_once(' ').unwrap();
            assert!(handle.parse::<u32>().is_ok(), "{base}");
            let guid = after.strip_prefix('{').unwrap().get(..36).unwrap();
            assert!(is_guid(guid), "{base}");
            seen.insert((handle.to_string(), guid.to_string()));
        }
        // Per-run details differ from run to run.
        assert!(seen.len() > 40, "{}", seen.len());
        assert!(!is_guid("222A245B-E637-4AE9-A93F-A59CA119A75"));
        assert!(!is_guid("222A245B+E637-4AE9-A93F-A59CA119A75E"));
    }
}
