//! Which processes hold which objects (`/proc/*/fd`, `/proc/*/maps`), and user names.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

pub(super) fn proc_uid(pid: i32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// Which live processes hold which files, sockets and System V segments.
#[derive(Default)]
pub(super) struct Holders {
    files: HashMap<(u64, u64), Vec<i32>>,
    sockets: HashMap<u64, Vec<i32>>,
    sysv_shm: HashMap<i32, Vec<i32>>,
}

impl Holders {
    pub(super) fn scan() -> Holders {
        let mut h = Holders::default();
        let Ok(procs) = fs::read_dir("/proc") else {
            return h;
        };
        let shm_dev = fs::metadata("/dev/shm").map(|m| m.dev()).ok();
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(fds) = fs::read_dir(p.path().join("fd")) {
                for fd in fds.flatten() {
                    let Ok(target) = fs::read_link(fd.path()) else {
                        continue;
                    };
                    let t = target.to_string_lossy();
                    if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']'))
                    {
                        if let Ok(ino) = ino.parse() {
                            push(h.sockets.entry(ino).or_default(), pid);
                        }
                    } else if t.starts_with('/')
                        && let Ok(m) = fs::metadata(fd.path())
                    {
                        push(h.files.entry((m.dev(), m.ino())).or_default(), pid);
                    }
                }
            }
            if let Ok(maps) = fs::read_to_string(p.path().join("maps")) {
                for line in maps.lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() < 6 {
                        continue;
                    }
                    let Ok(ino) = f[4].parse::<u64>() else {
                        continue;
                    };
                    if f[5] == "/SYSV00000000" || f[5].starts_with("/SYSV") {
                        // System V segments appear as /SYSV<key> with the shmid as inode.
                        push(h.sysv_shm.entry(ino as i32).or_default(), pid);
                    } else if f[5].starts_with("/dev/shm/")
                        && let Some(dev) = shm_dev
                    {
                        push(h.files.entry((dev, ino)).or_default(), pid);
                    }
                }
            }
        }
        h
    }

    pub(super) fn file(&self, dev: u64, ino: u64) -> Vec<i32> {
        self.files.get(&(dev, ino)).cloned().unwrap_or_default()
    }
    pub(super) fn socket(&self, ino: u64) -> Vec<i32> {
        self.sockets.get(&ino).cloned().unwrap_or_default()
    }
    pub(super) fn sysv_shm(&self, id: i32) -> Vec<i32> {
        self.sysv_shm.get(&id).cloned().unwrap_or_default()
    }
}

fn push(v: &mut Vec<i32>, pid: i32) {
    if !v.contains(&pid) {
        v.push(pid);
    }
}

/// uid -> user name, from /etc/passwd.
pub(super) struct Users(HashMap<u32, String>);

impl Users {
    pub(super) fn load() -> Users {
        let text = fs::read_to_string("/etc/passwd").unwrap_or_default();
        Users(
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some((f.get(2)?.parse().ok()?, (*f.first()?).to_owned()))
                })
                .collect(),
        )
    }
    pub(super) fn name(&self, uid: u32) -> Option<String> {
        self.0.get(&uid).cloned()
    }
}
