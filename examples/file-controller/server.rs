//! `file-controller-server [--addr ADDR] [--root DIR]`: `Greeter` and `FileController` on one port.
//!
//! Files live under a root directory (`--root`, else `MUXS_DATA_DIR`, else a directory it creates
//! in the system's temporary directory). A name must be a relative path of plain components:
//! absolute paths and `..` get PERMISSION_DENIED. Writes go to a temporary file that is renamed over
//! the target, so a reader or a crash never sees half a file, and concurrent writers leave one
//! whole version. Files are capped by the message size limit.
//!
//! As in the tutorial, a file that cannot be read answers `Error: read failed`, and a write answers
//! code 0 on success and 1 on failure.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rgrpc::{Request, Response, Server, Status};
use rgrpc_examples::file_controller as muxs;

/// Files are answered in one message, so they must fit the 4 MiB default with room for framing.
const MAX_FILE: u64 = 4 * 1024 * 1024 - 1024;

struct Greeter;

impl muxs::Greeter for Greeter {
    async fn say_hello(
        &self,
        request: Request<muxs::HelloRequest>,
    ) -> Result<Response<muxs::HelloReply>, Status> {
        Ok(Response::new(muxs::HelloReply {
            message: format!("Hello, {}!", request.into_inner().name),
        }))
    }
}

struct Files {
    root: PathBuf,
    counter: AtomicU64,
}

impl Files {
    /// The path of `name` under the root, or PERMISSION_DENIED.
    fn resolve(&self, name: &str) -> Result<PathBuf, Status> {
        let path = Path::new(name);
        let plain = !name.is_empty()
            && !name.contains('\0')
            && path.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(Status::permission_denied(format!(
                "{name:?} is not a relative path inside the server's root"
            )));
        }
        let full = self.root.join(path);
        // A symlink under the root must not lead out of it either.
        if let Some(parent) = full.parent()
            && let Ok(real) = parent.canonicalize()
            && !real.starts_with(&self.root)
        {
            return Err(Status::permission_denied(format!(
                "{name:?} leads outside the server's root"
            )));
        }
        // And so must the name itself, when it is a symlink (one that leads nowhere included).
        if let Ok(meta) = std::fs::symlink_metadata(&full)
            && meta.file_type().is_symlink()
            && !full
                .canonicalize()
                .is_ok_and(|real| real.starts_with(&self.root))
        {
            return Err(Status::permission_denied(format!(
                "{name:?} is a link that leads outside the server's root"
            )));
        }
        Ok(full)
    }
}

impl muxs::FileController for Files {
    async fn read(&self, request: Request<muxs::Files>) -> Result<Response<muxs::Content>, Status> {
        let path = self.resolve(&request.into_inner().filename)?;
        let text = match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.len() > MAX_FILE => {
                return Err(Status::resource_exhausted(format!(
                    "file is {} bytes, more than the {MAX_FILE} a message can carry",
                    meta.len()
                )));
            }
            Ok(meta) if meta.is_file() => tokio::fs::read_to_string(&path)
                .await
                .unwrap_or_else(|_| "Error: read failed".into()),
            _ => "Error: read failed".into(),
        };
        Ok(Response::new(muxs::Content { text }))
    }

    async fn write(&self, request: Request<muxs::Files>) -> Result<Response<muxs::Status>, Status> {
        let files = request.into_inner();
        let path = self.resolve(&files.filename)?;
        if files.text.len() as u64 > MAX_FILE {
            return Err(Status::resource_exhausted(
                "text is larger than a file may be",
            ));
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let temp = path.with_file_name(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
        let written = async {
            tokio::fs::write(&temp, files.text.as_bytes()).await?;
            let file = tokio::fs::File::open(&temp).await?;
            file.sync_all().await?;
            tokio::fs::rename(&temp, &path).await
        }
        .await;
        let code = match written {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("write of {:?} failed: {err}", files.filename);
                let _ = tokio::fs::remove_file(&temp).await;
                1
            }
        };
        Ok(Response::new(muxs::Status { code }))
    }
}

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "[::]:50051",
        &["root"],
        "file-controller-server [--addr ADDR] [--root DIR]",
    );
    let root = args
        .value("root")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("MUXS_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| std::env::temp_dir().join("rgrpc-muxs-data"));
    if let Err(err) = std::fs::create_dir_all(&root) {
        eprintln!("cannot create the root directory {}: {err}", root.display());
        std::process::exit(1);
    }
    let root = root.canonicalize().expect("the root directory exists");
    eprintln!("serving files under {}", root.display());
    let files = Files {
        root,
        counter: AtomicU64::new(0),
    };
    rgrpc_examples::serve(
        Server::builder()
            .add_service(muxs::GreeterServer::new(Greeter))
            .add_service(muxs::FileControllerServer::new(files)),
        &args.addr,
        rgrpc_examples::file_controller::FILE_DESCRIPTOR_SET,
    )
    .await;
}
