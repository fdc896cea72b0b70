//! The folder of policies the connector enforces: every `*.json` is loaded and validated at start (any
//! invalid file stops the start), handed out as `Arc<CompiledPolicy>` by file name, and reloaded when the
//! folder changes. An invalid edit keeps the last valid version of that policy and is reported in `status`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use super::compile::CompiledPolicy;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("policy folder {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One line per problem, each naming the file and the rule.
    #[error("invalid policies:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("cannot watch the policy folder: {0}")]
    Watch(#[from] notify::Error),
}

/// What `/health/ready` and `/metrics` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStatus {
    pub policies: Vec<PolicyInfo>,
    /// Current problems, one line each (file: rule: message); empty when every file is valid.
    pub errors: Vec<String>,
    /// How many times a changed file failed to load since start.
    pub reload_failures: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub id: String,
    pub uid: Option<String>,
    /// SHA-256 (hex) of the file.
    pub version: String,
}

pub struct PolicyStore {
    inner: Arc<Inner>,
    watcher: Mutex<Option<RecommendedWatcher>>,
}

struct Inner {
    dir: PathBuf,
    policies: RwLock<HashMap<String, Arc<CompiledPolicy>>>,
    problems: Mutex<Problems>,
}

#[derive(Default)]
struct Problems {
    /// By file name: the hash of the failing content and its error lines.
    failing: BTreeMap<String, (String, Vec<String>)>,
    reload_failures: u64,
}

impl PolicyStore {
    /// Loads every `*.json` in `dir`; fails naming every invalid file and rule.
    pub fn open(dir: impl Into<PathBuf>) -> Result<PolicyStore, StoreError> {
        let dir = dir.into();
        let mut policies = HashMap::new();
        let mut errors = Vec::new();
        for (id, file, bytes) in read_folder(&dir)? {
            match compile(&id, &file, &bytes) {
                Ok(p) => {
                    policies.insert(id, Arc::new(p));
                }
                Err(lines) => errors.extend(lines),
            }
        }
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        tracing::info!(dir = %dir.display(), count = policies.len(), "policies loaded");
        Ok(PolicyStore {
            inner: Arc::new(Inner {
                dir,
                policies: RwLock::new(policies),
                problems: Mutex::new(Problems::default()),
            }),
            watcher: Mutex::new(None),
        })
    }

    /// The policy loaded from `<id>.json` (a trailing `.json` in `id` is accepted too).
    pub fn get(&self, id: &str) -> Option<Arc<CompiledPolicy>> {
        let id = id.strip_suffix(".json").unwrap_or(id);
        self.inner
            .policies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn status(&self) -> StoreStatus {
        let mut policies: Vec<PolicyInfo> = self
            .inner
            .policies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|p| PolicyInfo {
                id: p.id().to_owned(),
                uid: p.uid().map(str::to_owned),
                version: p.version().to_owned(),
            })
            .collect();
        policies.sort_by(|a, b| a.id.cmp(&b.id));
        let problems = self
            .inner
            .problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        StoreStatus {
            policies,
            errors: problems
                .failing
                .values()
                .flat_map(|(_, lines)| lines.clone())
                .collect(),
            reload_failures: problems.reload_failures,
        }
    }

    /// Re-reads the folder now: changed files are recompiled, removed ones dropped. The watcher calls this.
    pub fn reload(&self) {
        self.inner.rescan();
    }

    /// Starts reloading on change: events are collected until the folder has been quiet for `debounce`,
    /// then the folder is rescanned once. Stops when the store is dropped.
    pub fn watch(&self, debounce: Duration) -> Result<(), StoreError> {
        let (tx, rx) = channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            // A send error means the reload thread has ended, which only happens when the store is dropped.
            let _ = tx.send(event);
        })?;
        watcher.watch(&self.inner.dir, RecursiveMode::NonRecursive)?;
        let inner = Arc::clone(&self.inner);
        std::thread::Builder::new()
            .name("policy-reload".into())
            .spawn(move || {
                // The sender lives in the watcher: when the store drops it, recv fails and the thread ends.
                while let Ok(first) = rx.recv() {
                    let mut relevant = is_relevant(&first);
                    loop {
                        match rx.recv_timeout(debounce) {
                            Ok(event) => relevant |= is_relevant(&event),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    if relevant {
                        inner.rescan();
                    }
                }
            })
            .map_err(|e| StoreError::Io {
                path: self.inner.dir.clone(),
                source: e,
            })?;
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = Some(watcher);
        Ok(())
    }
}

/// Reading the files ourselves raises access events; those must not trigger another rescan.
fn is_relevant(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Err(_) => true,
        Ok(e) => {
            !matches!(
                e.kind,
                EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
            ) && e
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|x| x == "json"))
        }
    }
}

impl Inner {
    fn rescan(&self) {
        let files = match read_folder(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = %e, "policy folder unreadable; keeping the loaded policies");
                let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
                problems.reload_failures += 1;
                problems
                    .failing
                    .insert(String::new(), (String::new(), vec![e.to_string()]));
                return;
            }
        };
        let current = self
            .policies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut next = HashMap::new();
        let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        problems.failing.remove("");
        for (id, file, bytes) in &files {
            let hash = hex::encode(Sha256::digest(bytes));
            if let Some(p) = current.get(id).filter(|p| p.version() == hash) {
                next.insert(id.clone(), Arc::clone(p));
                problems.failing.remove(file);
                continue;
            }
            match compile(id, file, bytes) {
                Ok(p) => {
                    tracing::info!(policy = %id, version = %p.version(), "policy loaded");
                    problems.failing.remove(file);
                    next.insert(id.clone(), Arc::new(p));
                }
                Err(lines) => {
                    let counted = problems.failing.get(file).is_some_and(|(h, _)| *h == hash);
                    if !counted {
                        problems.reload_failures += 1;
                        for line in &lines {
                            tracing::warn!(policy = %id, problem = %line, "policy edit rejected; keeping the last valid version");
                        }
                    }
                    problems.failing.insert(file.clone(), (hash, lines));
                    if let Some(old) = current.get(id) {
                        next.insert(id.clone(), Arc::clone(old));
                    }
                }
            }
        }
        for id in current.keys().filter(|id| !next.contains_key(*id)) {
            tracing::warn!(policy = %id, "policy file removed; its assets are no longer served");
        }
        let names: Vec<&String> = files.iter().map(|(_, f, _)| f).collect();
        problems.failing.retain(|file, _| names.contains(&file));
        *self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner) = next;
    }
}

/// `(id, file name, bytes)` of every `*.json` in the folder, sorted by name.
fn read_folder(dir: &Path) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
    let io = |source| StoreError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_none_or(|x| x != "json") || !path.is_file() {
            continue;
        }
        let (Some(stem), Some(file)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.file_name().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        out.push((stem.to_owned(), file.to_owned(), bytes));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn compile(id: &str, file: &str, bytes: &[u8]) -> Result<CompiledPolicy, Vec<String>> {
    let mut policy = CompiledPolicy::from_bytes(file, bytes)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    policy.set_id(id);
    Ok(policy)
}
