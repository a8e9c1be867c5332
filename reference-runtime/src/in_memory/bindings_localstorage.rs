//! `bindings.localstorage`: files under a root directory, with `create`, `get`, `list` and
//! `delete`. A file name that would leave the root is refused.

use std::path::{Component as PathPart, Path, PathBuf};

use async_trait::async_trait;
use contract::bindings::{InvokeRequest, InvokeResponse};
use contract::{Error, OutputBinding, Result};

/// Request metadata naming the file.
pub const FILE_NAME: &str = "fileName";

/// The local-storage binding.
#[derive(Debug, Clone)]
pub struct LocalStorageBinding {
    root: PathBuf,
}

impl LocalStorageBinding {
    /// A binding rooted at `root`, created if missing.
    pub fn new(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Backend(format!("cannot create root directory `{}`: {e}", root.display())))?;
        let root = root
            .canonicalize()
            .map_err(|e| Error::Backend(format!("cannot resolve root directory `{}`: {e}", root.display())))?;
        Ok(Self { root })
    }

    /// The file a request names, refused when it is absolute or climbs out of the root.
    fn resolve(&self, name: &str) -> Result<PathBuf> {
        let relative = Path::new(name);
        let plain = relative.components().all(|part| matches!(part, PathPart::Normal(_) | PathPart::CurDir));
        if name.is_empty() || !plain {
            return Err(Error::InvalidArgument(format!(
                "file name `{name}` must be a relative path inside the binding's root, without `..`"
            )));
        }
        let path = self.root.join(relative);
        // A symlink inside the root could still point outside it.
        if let Some(parent) = path.parent().and_then(|p| p.canonicalize().ok())
            && !parent.starts_with(&self.root)
        {
            return Err(Error::InvalidArgument(format!("file name `{name}` resolves outside the binding's root")));
        }
        Ok(path)
    }

    fn file_name(request: &InvokeRequest) -> Result<&str> {
        request.metadata.get(FILE_NAME).map(String::as_str).ok_or_else(|| {
            Error::InvalidArgument(format!("operation `{}` needs metadata `{FILE_NAME}`", request.operation))
        })
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries =
                std::fs::read_dir(&dir).map_err(|e| Error::Backend(format!("cannot list `{}`: {e}", dir.display())))?;
            for entry in entries {
                let path = entry.map_err(|e| Error::Backend(e.to_string()))?.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(relative) = path.strip_prefix(&self.root) {
                    names.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }
}

fn io_error(name: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound { what: format!("file `{name}`") }
    } else {
        Error::Backend(format!("file `{name}`: {e}"))
    }
}

#[async_trait]
impl OutputBinding for LocalStorageBinding {
    fn operations(&self) -> Vec<String> {
        ["create", "get", "list", "delete"].map(str::to_owned).to_vec()
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let json = |value: serde_json::Value| InvokeResponse {
            data: Some(value.to_string().into_bytes()),
            content_type: Some("application/json".to_owned()),
            ..InvokeResponse::default()
        };
        match request.operation.to_ascii_lowercase().as_str() {
            "create" => {
                let name = match request.metadata.get(FILE_NAME) {
                    Some(name) => name.clone(),
                    None => uuid::Uuid::new_v4().to_string(),
                };
                let path = self.resolve(&name)?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_error(&name, e))?;
                }
                std::fs::write(&path, &request.data).map_err(|e| io_error(&name, e))?;
                Ok(json(serde_json::json!({ "fileName": name })))
            }
            "get" => {
                let name = Self::file_name(&request)?;
                let data = std::fs::read(self.resolve(name)?).map_err(|e| io_error(name, e))?;
                Ok(InvokeResponse { data: Some(data), ..InvokeResponse::default() })
            }
            "list" => Ok(json(serde_json::json!(self.list()?))),
            "delete" => {
                let name = Self::file_name(&request)?;
                std::fs::remove_file(self.resolve(name)?).map_err(|e| io_error(name, e))?;
                Ok(InvokeResponse::default())
            }
            other => Err(Error::unsupported(format!("binding operation `{other}`"))),
        }
    }
}
